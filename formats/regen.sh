#!/usr/bin/env bash
# Regenerate everything derived from formats/*.ksy:
#
#   bash formats/regen.sh        (or: npm run regen --prefix formats)
#
# 1. node formats/ksc.mjs: the pinned Kaitai Struct compiler (0.11.0, see
#    formats/package-lock.json; install it with `npm ci --prefix formats`)
#    writes, for every formats/NAME.ksy, generated/NAME.py and generated/NAME.dot
#    (the compiler's Graphviz target), and generated/__init__.py.
# 2. python3 formats/tools/pystubs.py writes generated/NAME.pyi, the type stubs of
#    generated/NAME.py (inferred from that code; the compiler writes none), so
#    that users' mypy --strict sees the parsers' types.
# 3. Graphviz `dot -Gnewrank=true -Tsvg` renders each generated/NAME.dot to docs/NAME.svg, the
#    picture of that format's types (Debian: apt-get install graphviz). Each SVG
#    records the sha256 of the .dot it was rendered from, so tests can tell a
#    stale picture without Graphviz.
#
# Commit generated/ and docs/*.svg together with the .ksy change.
# To regenerate only the Python modules, their stubs and the .dot files (no
# Graphviz needed), run `node formats/ksc.mjs && python3 formats/tools/pystubs.py`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

die() { echo "regen: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found: install Node.js (20 or later)"
command -v python3 >/dev/null 2>&1 || die "python3 not found: formats/tools/pystubs.py writes the type stubs"
[ -d "$here/node_modules/kaitai-struct-compiler" ] \
  || die "the pinned compiler is not installed: run 'npm ci --prefix formats'"
command -v dot >/dev/null 2>&1 \
  || die "Graphviz 'dot' not found: install Graphviz (Debian/Ubuntu: apt-get install graphviz), or run 'node formats/ksc.mjs' to regenerate generated/ without the SVG"

node "$here/ksc.mjs"
python3 "$here/tools/pystubs.py"
echo "regen: wrote generated/ ($(cd "$root/generated" && ls | tr '\n' ' '))"

tmp=$(mktemp)
errs=$(mktemp)
trap 'rm -f "$tmp" "$errs"' EXIT
mkdir -p "$root/docs"
for ksy in "$here"/*.ksy; do
  name=$(basename "$ksy" .ksy)
  dotfile="$root/generated/$name.dot"
  svgfile="$root/docs/$name.svg"
  [ -s "$dotfile" ] || die "node formats/ksc.mjs did not write $dotfile"
  sha=$(sha256sum "$dotfile" | cut -d' ' -f1)
  # newrank=true: with dot's default ranking, Graphviz 2.43 lays out some edges
  # of generated/qcow2.dot differently from run to run (the bold edges into
  # incompatible_features and snapshot_extra_data); with it every run gives the
  # same picture, so the committed SVG can be compared with a fresh render.
  if ! dot -Gnewrank=true -Tsvg "$dotfile" -o "$tmp" 2>"$errs"; then
    cat "$errs" >&2
    die "dot -Tsvg failed on $dotfile"
  fi
  # The compiler's .dot points some edges at a port "<id>_type" that instance
  # tables do not have; dot warns and attaches the edge to the table itself.
  # Summarise those known warnings, show any other.
  known=$(grep -c 'port .*_type unrecognized' "$errs" || true)
  grep -v 'port .*_type unrecognized' "$errs" >&2 || true
  [ "$known" -eq 0 ] || echo "regen: dot: $name.dot: $known known 'port ..._type unrecognized' warnings (edges to instance tables attach to the table)"
  # Record which .dot the picture was rendered from, after the XML declaration.
  {
    head -n 1 "$tmp"
    echo "<!-- Rendered by formats/regen.sh from generated/$name.dot sha256:$sha -->"
    tail -n +2 "$tmp"
  } >"$svgfile"
  echo "regen: wrote docs/$name.svg ($(dot -V 2>&1))"
done

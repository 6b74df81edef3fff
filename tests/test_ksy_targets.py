"""Every .ksy of formats/ compiles to every target of the pinned compiler;
generated/ and the pictures of the formats are up to date.

For each .ksy, one node process compiles every language (`node formats/ksc.mjs
--all-languages --ksy NAME --out DIR`), so each definition's results are its
own and the whole check takes a few seconds. Every test that applies to a
definition is parametrised over formats/*.ksy (ids: the file names without
.ksy).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import ksy_toolchain as tc
import pytest

ROOT = tc.ROOT
GENERATED = ROOT / "generated"
DOT = GENERATED / "qcow2_journal.dot"
SVG = ROOT / "docs" / "qcow2_journal.svg"
KSY_IDS = [tc.ksy_id(p) for p in tc.KSY_FILES]

# Languages the pinned compiler cannot produce for a .ksy: the text its error
# must contain, and why. Each entry is re-checked: if the language starts to
# compile (a compiler upgrade, a .ksy change), test_known_compiler_failures
# fails and asks for the entry to be removed; if it fails for another reason,
# the test fails too.
KNOWN_FAILURES = {
    "nim": (
        "NimTranslator.doInternalName",
        "kaitai-struct-compiler 0.11.0 cannot compile any `valid: expr` to Nim: "
        "NimTranslator does not implement doInternalName (scala.NotImplementedError, "
        "'an implementation is missing'), not even `_ == 2`; the .ksy has two such checks "
        "(/seq/0 area_length_rule, /types/entry/seq/1 type_code). Rewriting them as min/max "
        "would not help Nim: its 0.11.0 backend drops `valid` min/max without a check",
    ),
}

# The same, for formats/qcow2.ksy. Nim fails with this exact message (the
# compiler's NotImplementedError, unwrapped by ksc.mjs's describeError); it is
# the only obstacle: with its `valid: expr` checks removed the .ksy compiles to
# Nim (test_known_nim_failure_is_only_valid_expr re-checks that).
QCOW2_NIM_ERROR = ("scala.NotImplementedError: an implementation is missing "
                   "(in the compiler's NimTranslator.doInternalName)")
KNOWN_FAILURES_BY_KSY = {
    "qcow2_journal": KNOWN_FAILURES,
    "qcow2": {
        "nim": (
            QCOW2_NIM_ERROR,
            "kaitai-struct-compiler 0.11.0 cannot compile any `valid: expr` to Nim "
            "(NimTranslator.doInternalName is not implemented); formats/qcow2.ksy has 22 "
            "such checks (alignments, header_length, compression_type, subcluster bitmaps, "
            "...), each a rule the spec states with 'must' that min/max/any-of cannot express",
        ),
    },
}


@pytest.fixture(scope="module")
def languages() -> list[str]:
    langs = tc.ksc("--languages").stdout.split()
    assert langs, "node formats/ksc.mjs --languages listed no language"
    return langs


@pytest.fixture(scope="module", params=KSY_IDS)
def ksy(request: pytest.FixtureRequest) -> str:
    """The meta id (and file name without .ksy) of one formats/*.ksy."""
    ksy_id: str = request.param
    return ksy_id


@pytest.fixture(scope="module")
def all_targets(tmp_path_factory: pytest.TempPathFactory, ksy: str) -> tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]]:
    """Compile one .ksy to every language in one node process."""
    out = tmp_path_factory.mktemp(f"ksc-all-{ksy}")
    proc = tc.ksc("--all-languages", "--ksy", f"{ksy}.ksy", "--out", str(out), check=False)
    report_file = out / "report.json"
    assert report_file.is_file(), f"no report.json\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(report_file.read_text())
    assert report["ksy"] == [f"{ksy}.ksy"], report["ksy"]
    return out, report, proc


def test_every_definition_has_its_known_failures_recorded() -> None:
    assert sorted(KNOWN_FAILURES_BY_KSY) == sorted(KSY_IDS), (
        "every formats/*.ksy needs an entry (possibly empty) in KNOWN_FAILURES_BY_KSY")


def _files(directory: Path) -> dict[str, int]:
    return {
        p.relative_to(directory).as_posix(): p.stat().st_size
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_report_covers_every_language(languages: list[str], all_targets: tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]]) -> None:
    _, report, proc = all_targets
    assert report["compiler"] == "0.11.0", "formats/package-lock.json pins compiler 0.11.0"
    assert sorted(report["languages"]) == sorted(languages)
    failed = [lang for lang, r in report["languages"].items() if not r["ok"]]
    assert proc.returncode == (1 if failed else 0), proc.stderr
    for lang in languages:
        status = "ok" if report["languages"][lang]["ok"] else "FAIL"
        assert re.search(rf"^{status}\s+{re.escape(lang)}\s", proc.stdout, re.M), proc.stdout


def test_every_language_compiles(languages: list[str], all_targets: tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]], ksy: str) -> None:
    out, report, _ = all_targets
    problems = []
    for lang in languages:
        if lang in KNOWN_FAILURES_BY_KSY[ksy]:
            continue
        result = report["languages"][lang]
        if not result["ok"]:
            problems.append(f"{lang}: {result['error']}")
            continue
        files = _files(out / lang)
        if not files:
            problems.append(f"{lang}: compiled but wrote no file")
        empty = [f for f, size in files.items() if size == 0]
        if empty:
            problems.append(f"{lang}: empty output {empty}")
        if files != result["files"]:
            problems.append(f"{lang}: files on disk {files} != reported {result['files']}")
    assert not problems, f"languages that do not compile {ksy}.ksy:\n" + "\n".join(problems)


def _known_failure_params() -> list[Any]:
    return [pytest.param(ksy, lang, id=f"{ksy}-{lang}")
            for ksy in KSY_IDS for lang in sorted(KNOWN_FAILURES_BY_KSY.get(ksy, {}))]


@pytest.mark.parametrize(("ksy", "lang"), _known_failure_params(), scope="module")
def test_known_compiler_failures(ksy: str, lang: str, languages: list[str], all_targets: tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]]) -> None:
    _, report, _ = all_targets
    needle, why = KNOWN_FAILURES_BY_KSY[ksy][lang]
    if lang not in languages:
        pytest.fail(f"{lang} is no longer a compiler language: remove it from KNOWN_FAILURES")
    result = report["languages"][lang]
    assert not result["ok"], (
        f"{lang} compiles now: remove it from KNOWN_FAILURES (was: {why})")
    assert needle in result["error"], (
        f"{lang} fails for another reason than the known one ({needle}): {result['error']}")
    pytest.xfail(f"{ksy}.ksy, {lang}: {why}")


@pytest.mark.parametrize("ksy", ["qcow2"], scope="module")
def test_qcow2_nim_failure_is_the_exact_recorded_message(all_targets: tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]], ksy: str) -> None:
    """The qcow2 entry records the compiler's whole message, not a fragment."""
    _, report, _ = all_targets
    assert report["languages"]["nim"] == {"ok": False, "error": QCOW2_NIM_ERROR}


# Drops every `valid: expr` of a .ksy (read as formats/ksc.mjs reads it) and
# compiles the rest to Nim: prints "ok" or the unwrapped error.
_NIM_WITHOUT_VALID_EXPR = r"""
const { createRequire } = require("node:module");
const r = createRequire(process.argv[1]);
const yaml = r("js-yaml"), compiler = r("kaitai-struct-compiler"), fs = require("node:fs");
const ksy = yaml.load(fs.readFileSync(process.argv[2], "utf8"), { schema: yaml.CORE_SCHEMA });
let removed = 0;
(function walk(o) {
  if (Array.isArray(o)) return o.forEach(walk);
  if (!o || typeof o !== "object") return;
  if (o.valid && typeof o.valid === "object" && "expr" in o.valid) { delete o.valid; removed++; }
  Object.values(o).forEach(walk);
})(ksy);
compiler.compile("nim", ksy, null, false).then(
  () => console.log(`ok ${removed}`),
  (e) => { let x = e; for (let i = 0; i < 10 && x && x.jl_Throwable__f_e; i++) x = x.jl_Throwable__f_e;
           console.log(`FAIL ${removed} ${x}`); });
"""


# How many `valid: expr` checks each recorded Nim failure counts (its text says so).
VALID_EXPR_CHECKS = {"qcow2_journal": 2, "qcow2": 22}


@pytest.mark.parametrize("ksy_name", [k for k in KSY_IDS if "nim" in KNOWN_FAILURES_BY_KSY.get(k, {})])
def test_known_nim_failure_is_only_valid_expr(ksy_name: str) -> None:
    """Each recorded Nim failure blames `valid: expr`: without those checks the
    .ksy compiles to Nim, so no other Nim gap hides behind the recorded one."""
    out = tc.run_node(["-e", _NIM_WITHOUT_VALID_EXPR, str(tc.FORMATS / "package.json"),
                       str(tc.FORMATS / f"{ksy_name}.ksy")]).stdout.split()
    assert out[0] == "ok", " ".join(out)
    assert int(out[1]) == VALID_EXPR_CHECKS[ksy_name], "the recorded reason counts another number of checks"
    assert f"{'two' if ksy_name == 'qcow2_journal' else VALID_EXPR_CHECKS[ksy_name]} such checks" in (
        KNOWN_FAILURES_BY_KSY[ksy_name]["nim"][1])


def test_generated_matches_a_fresh_compile(all_targets: tuple[Path, dict[str, Any], subprocess.CompletedProcess[str]], ksy: str) -> None:
    """generated/NAME.py and generated/NAME.dot (what the default `node
    formats/ksc.mjs` writes, with __init__.py) are byte-equal to the one-process
    compile of formats/NAME.ksy: generated/ is fresh, and no state leaks from
    one language to the next. (tests/test_regen.py compares the whole folder.)"""
    out, _, _ = all_targets
    for lang, name in (("python", f"{ksy}.py"), ("graphviz", f"{ksy}.dot")):
        assert (GENERATED / name).is_file(), f"generated/{name} is missing: run `bash formats/regen.sh`"
        assert (out / lang / name).read_bytes() == (GENERATED / name).read_bytes(), (
            f"generated/{name} differs from a fresh compile: run `bash formats/regen.sh` and commit")


def _svg_root() -> ET.Element:
    assert SVG.is_file(), "docs/qcow2_journal.svg is missing: run `bash formats/regen.sh`"
    return ET.parse(SVG).getroot()


def test_svg_is_valid_and_shows_the_types() -> None:
    root = _svg_root()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
    ns = {"svg": "http://www.w3.org/2000/svg"}
    titles = {t.text for t in root.iterfind(".//svg:title", ns)}
    texts = {t.text for t in root.iterfind(".//svg:text", ns)}
    for ksy_type, label in (("cluster", "Qcow2Journal::Cluster"),
                            ("entry", "Qcow2Journal::Entry")):
        assert f"{ksy_type}__seq" in titles, f"no node for type {ksy_type} in the SVG"
        assert label in texts, f"no label {label} in the SVG"
    for field in ("len_entry", "entry_type", "digest", "physical_sector", "first_logical_sector", "body", "clusters"):
        assert field in texts, f"field {field} not drawn"


def test_svg_draws_every_type_field_and_instance(ksy: str) -> None:
    """docs/NAME.svg shows what formats/NAME.ksy defines: a box per type (the
    compiler's `cluster__<type>` with the class label), every seq field's id,
    and a row per instance (`<type>__inst__<id>`); derived from the .ksy."""
    svg, _ = _picture(ksy)
    assert svg.is_file(), f"docs/{ksy}.svg is missing: run `bash formats/regen.sh`"
    root = ET.parse(svg).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    titles = {t.text for t in root.iterfind(".//svg:title", ns)}
    texts = {t.text for t in root.iterfind(".//svg:text", ns)}
    spec = tc.load_ksy(tc.FORMATS / f"{ksy}.ksy")
    root_label = _upper_camel(spec["meta"]["id"])
    missing = []
    types = [(spec["meta"]["id"], spec, True)] + [(n, t, False) for n, t in (spec.get("types") or {}).items()]
    for name, tspec, is_root in types:
        if not is_root:
            if f"cluster__{name}" not in titles:
                missing.append(f"box of type {name}")
            if f"{root_label}::{_upper_camel(name)}" not in texts:
                missing.append(f"label {root_label}::{_upper_camel(name)}")
        for attr in tspec.get("seq") or []:
            if attr["id"] not in texts:
                missing.append(f"field {name}.{attr['id']}")
        for inst in tspec.get("instances") or {}:
            if f"{name}__inst__{inst}" not in titles:
                missing.append(f"instance {name}.{inst}")
    assert not missing, f"docs/{ksy}.svg does not draw: {missing}"


def _upper_camel(ksy_id: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in ksy_id.split("_"))


def _picture(ksy: str) -> tuple[Path, Path]:
    """docs/NAME.svg and the generated/NAME.dot it is rendered from."""
    return ROOT / "docs" / f"{ksy}.svg", GENERATED / f"{ksy}.dot"


def test_svg_was_rendered_from_the_committed_dot(ksy: str) -> None:
    svg, dot = _picture(ksy)
    text = svg.read_text(encoding="utf-8")
    m = re.search(rf"from generated/{re.escape(ksy)}\.dot sha256:([0-9a-f]{{64}})", text)
    assert m, f"docs/{ksy}.svg does not name its .dot: render it with `bash formats/regen.sh`"
    assert m.group(1) == hashlib.sha256(dot.read_bytes()).hexdigest(), (
        f"docs/{ksy}.svg was rendered from another .dot: run `bash formats/regen.sh`")


# The flags formats/regen.sh renders with (newrank=true: Graphviz 2.43's default
# ranking routes some edges of qcow2.dot differently from run to run).
DOT_FLAGS = ("-Gnewrank=true",)


def test_graphviz_renders_every_dot_the_same_way_twice(ksy: str) -> None:
    """With DOT_FLAGS, two renders of the same .dot are byte-equal (without
    newrank=true, qcow2.dot's are not), so a fresh render can be compared."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz dot is not installed")
    _, dotfile = _picture(ksy)
    renders = {subprocess.run([dot, *DOT_FLAGS, "-Tsvg", str(dotfile)], capture_output=True, text=True,
                              check=True).stdout for _ in range(3)}
    assert len(renders) == 1, f"{len(renders)} different renders of generated/{ksy}.dot"


def test_svg_equals_a_fresh_render(tmp_path: Path, ksy: str) -> None:
    """Byte-equal to `dot -Tsvg` of the committed .dot, when the local Graphviz
    is the version that rendered the committed SVG (layouts differ between
    Graphviz versions)."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz dot is not installed")
    SVG, DOT = _picture(ksy)
    committed = SVG.read_text(encoding="utf-8")
    m = re.search(r"Generated by graphviz version ([^\n]*?)\s*\n", committed)
    local = subprocess.run([dot, "-V"], capture_output=True, text=True, check=False).stderr
    if not m or m.group(1) not in local:
        pytest.skip(f"local Graphviz ({local.strip()}) is not the one that rendered the SVG")
    assert f"dot {' '.join(DOT_FLAGS)} -Tsvg" in (tc.FORMATS / "regen.sh").read_text(), (
        "formats/regen.sh renders with other flags than DOT_FLAGS")
    fresh = subprocess.run([dot, *DOT_FLAGS, "-Tsvg", str(DOT)], capture_output=True, text=True, check=True).stdout
    head, rest = fresh.split("\n", 1)
    sha = hashlib.sha256(DOT.read_bytes()).hexdigest()
    expected = (f"{head}\n<!-- Rendered by formats/regen.sh from generated/{ksy}.dot "
                f"sha256:{sha} -->\n{rest}")
    assert committed == expected, f"docs/{ksy}.svg is not a fresh render: run `bash formats/regen.sh`"

"""The .ksy compiles to every target of the pinned compiler; generated/ and the
picture of the format are up to date.

One node process compiles every language (`node formats/ksc.mjs
--all-languages --out DIR`), so the whole check takes a couple of seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tc = _load("ksy_toolchain")

ROOT = tc.ROOT
GENERATED = ROOT / "generated"
DOT = GENERATED / "qcow2_journal.dot"
SVG = ROOT / "docs" / "qcow2_journal.svg"

# Languages the pinned compiler cannot produce for this .ksy: the text its
# error must contain, and why. Each entry is re-checked: if the language starts
# to compile (a compiler upgrade, a .ksy change), test_known_compiler_failures
# fails and asks for the entry to be removed.
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


@pytest.fixture(scope="module")
def languages() -> list[str]:
    langs = tc.ksc("--languages").stdout.split()
    assert langs, "node formats/ksc.mjs --languages listed no language"
    return langs


@pytest.fixture(scope="module")
def all_targets(tmp_path_factory):
    """Compile the .ksy to every language in one node process."""
    out = tmp_path_factory.mktemp("ksc-all")
    proc = tc.ksc("--all-languages", "--out", str(out), check=False)
    report_file = out / "report.json"
    assert report_file.is_file(), f"no report.json\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(report_file.read_text())
    return out, report, proc


def _files(directory: Path) -> dict[str, int]:
    return {
        p.relative_to(directory).as_posix(): p.stat().st_size
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_report_covers_every_language(languages, all_targets):
    out, report, proc = all_targets
    assert report["compiler"] == "0.11.0", "formats/package-lock.json pins compiler 0.11.0"
    assert sorted(report["languages"]) == sorted(languages)
    failed = [lang for lang, r in report["languages"].items() if not r["ok"]]
    assert proc.returncode == (1 if failed else 0), proc.stderr
    for lang in languages:
        status = "ok" if report["languages"][lang]["ok"] else "FAIL"
        assert re.search(rf"^{status}\s+{re.escape(lang)}\s", proc.stdout, re.M), proc.stdout


def test_every_language_compiles(languages, all_targets):
    out, report, _ = all_targets
    problems = []
    for lang in languages:
        if lang in KNOWN_FAILURES:
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
    assert not problems, "languages that do not compile:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", sorted(KNOWN_FAILURES))
def test_known_compiler_failures(lang, languages, all_targets):
    _, report, _ = all_targets
    needle, why = KNOWN_FAILURES[lang]
    if lang not in languages:
        pytest.fail(f"{lang} is no longer a compiler language: remove it from KNOWN_FAILURES")
    result = report["languages"][lang]
    assert not result["ok"], (
        f"{lang} compiles now: remove it from KNOWN_FAILURES (was: {why})")
    assert needle in result["error"], (
        f"{lang} fails for another reason than the known one ({needle}): {result['error']}")
    pytest.xfail(f"{lang}: {why}")


def test_generated_matches_a_fresh_compile(all_targets):
    """generated/qcow2_journal.py and generated/qcow2_journal.dot (what the
    default `node formats/ksc.mjs` writes, with __init__.py) are byte-equal to
    the one-process compile: generated/ is fresh, and no state leaks from one
    language to the next. (tests/test_regen.py compares the whole folder.)"""
    out, _, _ = all_targets
    for lang, name in (("python", "qcow2_journal.py"), ("graphviz", "qcow2_journal.dot")):
        assert (GENERATED / name).is_file(), f"generated/{name} is missing: run `bash formats/regen.sh`"
        assert (out / lang / name).read_bytes() == (GENERATED / name).read_bytes(), (
            f"generated/{name} differs from a fresh compile: run `bash formats/regen.sh` and commit")


def _svg_root():
    assert SVG.is_file(), "docs/qcow2_journal.svg is missing: run `bash formats/regen.sh`"
    return ET.parse(SVG).getroot()


def test_svg_is_valid_and_shows_the_types():
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


def test_svg_was_rendered_from_the_committed_dot():
    text = SVG.read_text(encoding="utf-8")
    m = re.search(r"from generated/qcow2_journal\.dot sha256:([0-9a-f]{64})", text)
    assert m, "docs/qcow2_journal.svg does not name its .dot: render it with `bash formats/regen.sh`"
    assert m.group(1) == hashlib.sha256(DOT.read_bytes()).hexdigest(), (
        "docs/qcow2_journal.svg was rendered from another .dot: run `bash formats/regen.sh`")


def test_svg_equals_a_fresh_render(tmp_path):
    """Byte-equal to `dot -Tsvg` of the committed .dot, when the local Graphviz
    is the version that rendered the committed SVG (layouts differ between
    Graphviz versions)."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz dot is not installed")
    committed = SVG.read_text(encoding="utf-8")
    m = re.search(r"Generated by graphviz version ([^\n]*?)\s*\n", committed)
    local = subprocess.run([dot, "-V"], capture_output=True, text=True).stderr
    if not m or m.group(1) not in local:
        pytest.skip(f"local Graphviz ({local.strip()}) is not the one that rendered the SVG")
    fresh = subprocess.run([dot, "-Tsvg", str(DOT)], capture_output=True, text=True, check=True).stdout
    head, rest = fresh.split("\n", 1)
    sha = hashlib.sha256(DOT.read_bytes()).hexdigest()
    expected = (f"{head}\n<!-- Rendered by formats/regen.sh from generated/qcow2_journal.dot "
                f"sha256:{sha} -->\n{rest}")
    assert committed == expected, "docs/qcow2_journal.svg is not a fresh render: run `bash formats/regen.sh`"

"""The documentation site (docs/): pages that cannot drift from the code, and the README's promises about them.

docs/commands.md is generated from the command line's own parser (every command's --help, a
table of which options each takes, each command's exit codes): ``python tests/test_docs.py``
rewrites it, and a test fails when it is stale. The Sphinx build itself runs in .ci/run with
warnings as errors; a test holds .ci/run to the README's build command.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMANDS_PAGE = DOCS / "commands.md"
HELP_COLUMNS = 100
"""The terminal width the help on the page is formatted for."""

INTRO = """\
# Command reference

`qjournal COMMAND --help` prints each section below; this page is generated from the same
parser (`python tests/test_docs.py` rewrites it, and a test fails when it is stale), so it
says what the installed command says. The [user guide](guide.md) shows the commands at work.
"""


@contextmanager
def _columns(n: int) -> Iterator[None]:
    """argparse wraps help to the terminal's width, read from COLUMNS: fix it while the page is made."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(n)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def commands_page() -> str:
    """docs/commands.md as the parser says it: the overview tables, then every command's --help."""
    from qjournal.cli.parser import COMMANDS, build_parser

    with _columns(HELP_COLUMNS):
        parser = build_parser()
        helps = {"": parser.format_help(), **{c.name: parser.commands[c.name].format_help() for c in COMMANDS}}  # type: ignore[attr-defined]
    out = [INTRO, "## At a glance\n",
           "Which command takes which of the shared options (an area inside a larger file is addressed by "
           "`--offset` and `--length`, in bytes, suffixes such as 64K and 1M accepted; `pack` names those of "
           "its two journals apart).\n",
           "| command | what it does | area: `--offset`, `--length` | `--output` | `--jobs` |",
           "|---|---|---|---|---|"]
    for command in COMMANDS:
        opts = _options(parser.commands[command.name])  # type: ignore[attr-defined]
        area = ", ".join(f"`{a.option_strings[0]}`" for a in parser.commands[command.name]._actions  # type: ignore[attr-defined]
                         if a.option_strings and a.option_strings[0].endswith(("-offset", "-length")))
        output = ", ".join(f"`{c}`" for c in opts["--output"].choices) if "--output" in opts else ""  # type: ignore[union-attr]
        jobs = _cell(opts["--jobs"].help or "") if "--jobs" in opts else ""
        out.append(f"| [`{command.name}`](#qjournal-{command.name}) | {_cell(command.help)} | {area} | {output} | {jobs} |")
    out += ["", "## Exit codes\n",
            "Every command exits 130 when interrupted (Ctrl-C); the other codes differ by command:\n",
            "| command | exit codes |", "|---|---|"]
    for command in COMMANDS:
        codes = "; ".join(f"**{code}** {_cell(text)}" for code, text in command.codes)
        out.append(f"| `{command.name}` | {codes} |")
    out.append("")
    for name, text in helps.items():
        out += [f"## qjournal{' ' + name if name else ''}\n", "```text", text.rstrip("\n"), "```", ""]
    return "\n".join(out)


def test_the_command_reference_is_what_the_parser_says() -> None:
    assert COMMANDS_PAGE.read_text(encoding="utf-8") == commands_page(), "docs/commands.md is stale: run `python tests/test_docs.py`"


def test_the_command_reference_names_every_command_and_option() -> None:
    """Not only fresh: every command has its section, and every option of it is on the page."""
    from qjournal.cli.parser import build_parser

    page = COMMANDS_PAGE.read_text(encoding="utf-8")
    parser = build_parser()
    for name, sub in parser.commands.items():  # type: ignore[attr-defined]
        section = page.split(f"\n## qjournal {name}\n", 1)[1].split("\n## ", 1)[0]
        for option in _options(sub):
            assert option in section, (name, option)


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_feature_list_names_every_command() -> None:
    """The README's opening list says what the command does: every command is named there, as `qjournal --help` names it."""
    from qjournal.cli.parser import COMMANDS

    intro = _readme().split("\n## ", 1)[0]
    line = next(line for line in intro.splitlines() if line.startswith("- `qjournal "))
    named = set(re.findall(r"[a-z]+", line.split("`")[1].removeprefix("qjournal ")))
    assert named == {c.name for c in COMMANDS}, line


def test_the_readme_stays_a_front_page() -> None:
    """What a newcomer needs, and links to the rest: the README stays short, and links every page of the site."""
    readme = _readme()
    assert len(readme.encode()) < 16 * 1024, f"README.md is {len(readme.encode())} bytes: move the detail into docs/"
    pages = {p.stem for p in DOCS.glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([a-z_]+)\.md[#)]", readme))
    assert linked == pages - {"index"}, (linked, pages)


def _toctree() -> list[str]:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    block = re.search(r"```\{toctree\}\n(.*?)```", index, re.S)
    assert block, "docs/index.md has no toctree"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith(":")]


def test_every_page_is_in_the_site() -> None:
    assert sorted(_toctree()) == sorted(p.stem for p in DOCS.glob("*.md") if p.stem != "index")


def _relative_links(text: str) -> Iterator[str]:
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            yield target.split("#", 1)[0]


def test_relative_links_resolve() -> None:
    """Every relative link of the README and the pages names a file of the repository (GitHub follows them as paths)."""
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in _relative_links(page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def _heading_anchors(text: str) -> set[str]:
    """GitHub's (and MyST's) anchor of every heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_links_to_headings_resolve() -> None:
    """A link to a heading of a page (guide.md#the-library) names a heading that page has."""
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            linked = page.parent / target if target else page
            assert anchor in _heading_anchors(linked.read_text(encoding="utf-8")), f"{page.name}: {target}#{anchor}"


def test_ci_builds_the_docs_as_the_readme_says() -> None:
    """The README's docs build command is a line of .ci/run, with warnings as errors."""
    readme = _readme()
    command = next(line for block in re.findall(r"```sh\n(.*?)```", readme, re.S) for line in block.splitlines()
                   if "sphinx-build" in line)
    assert " -W " in command and "--keep-going" in command
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command.strip() in ci


def test_the_guide_exit_code_table_is_each_commands_own() -> None:
    """The user guide's exit-code table, a row per code and per group of commands where the codes differ,
    says exactly which command can return which code (each command's own table, and 130 for every one)."""
    from qjournal.cli.parser import COMMANDS

    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", guide.split("| exit | commands | meaning |", 1)[1].split("\n\n", 1)[0], re.M)
    names = [c.name for c in COMMANDS]
    said = {(name, int(code)) for code, who in rows
            for name in (names if who.strip() == "every command" else re.findall(r"`([a-z]+)`", who))}
    actual = {(c.name, code) for c in COMMANDS for code, _ in c.codes} | {(n, 130) for n in names}
    assert said == actual, (sorted(said - actual), sorted(actual - said))


if __name__ == "__main__":
    COMMANDS_PAGE.write_text(commands_page(), encoding="utf-8")
    print(f"wrote {COMMANDS_PAGE.relative_to(ROOT)}", file=sys.stderr)

"""What a user meets at the command line (issue 14): each point, its exact message, through a real process.

Full that is explained; batch positions counted one way, from 1; digests (hex mistakes, lengths that
differ from the journal's, --digest-size); pack's names; JSON input mistakes; wording and help (plurals,
CLI names, the subcommand's own help and exit codes, no rule numbers in help, an empty dump said on
stderr); what durability costs; reading without ``with`` leaves no unclosed file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_cli import SUBPROCESS_ENV

import qjournal
from qjournal import Entry, HashEntry, RawEntry

CLUSTER = 4096
SHA = "ab" * 32


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "qjournal", *args], input=stdin, check=False, capture_output=True, text=True, env=SUBPROCESS_ENV,
        timeout=60, cwd=cwd,
    )
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


def journal(path: Path, num_clusters: int, entries: Sequence[Entry]) -> str:
    with qjournal.create(path, num_clusters) as w:
        w.append_many(entries)
    return str(path)


def sha_entries(n: int, start: int = 0) -> list[HashEntry]:
    return [HashEntry((start + i).to_bytes(32, "big"), i, i) for i in range(n)]


# -- 1. full that is explained --------------------------------------------------------------------


def test_info_says_how_large_the_next_entry_may_be(tmp_path: Path) -> None:
    # 80 SHA-256 entries and a 50-byte raw one: 4050 bytes, 46 left in the only cluster, 44 of them usable
    path = journal(tmp_path / "j.bin", 1, sha_entries(80) + [RawEntry(0x03, b"\x00" * 48)])
    lines = dict(line.split(": ", 1) for line in run("info", path).stdout.splitlines())
    assert lines["free"] == "46 bytes (46 bytes)"
    assert lines["room"] == "the next entry can be up to 44 bytes; 0 more SHA-256 entries fit (50 bytes each, with the END each cluster needs)"
    assert lines["full"] == "no"
    doc = json.loads(run("info", path, "--output", "json").stdout)
    assert (doc["max_len_entry"], doc["num_sha256_entries_fit"], doc["is_full"]) == (44, 0, False)


def test_a_full_journal_says_why_and_gives_the_command_that_goes_on(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.bin", 1, sha_entries(81))  # 4050 bytes: 46 left, a 50-byte entry does not fit
    before = Path(path).read_bytes()
    proc = run("append", path, "--hash", SHA, "--physical", "1", "--logical", "2")
    assert proc.returncode == 1 and proc.stdout == ""
    error, hint = proc.stderr.splitlines()
    assert error == (
        f"qjournal: {path}: offset 0xfd2 (4050): journal full: no room for an entry of 50 bytes at offset 0xfd2: "
        "46 bytes are left in the last cluster and an entry needs its size plus the 2 bytes of the END after it, "
        "so at most 44 fit here, and no cluster follows (D6); nothing was written"
    )
    packed = tmp_path / "j-packed.qjournal"
    assert hint == (
        "qjournal: hint: to go on, pack the journal into a larger one (its live entries, in a fresh file): "
        f"qjournal pack {path} {packed} --clusters 2"
    )
    assert Path(path).read_bytes() == before
    command = hint.split(": ", 3)[-1].split()
    assert run(*command[1:]).returncode == 0  # the hint's command, as given, works
    proc = run("append", str(packed), "--hash", SHA, "--physical", "1", "--logical", "2")
    assert proc.returncode == 0, proc.stderr


# -- 2. batch positions: one way, from 1, in the user's words -------------------------------------------


def test_a_batch_that_does_not_fit_names_the_input_line(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.bin", 1, sha_entries(79))
    batch = "\n" + "\n".join(json.dumps(e.to_dict()) for e in sha_entries(3, 100)) + "\n"  # a blank first line
    proc = run("append", path, stdin=batch)
    assert proc.returncode == 1
    # two fit (79 + 2 = 81 entries, 4050 bytes); the third, on line 4 of the input, does not
    assert proc.stderr.splitlines()[0].startswith(
        f"qjournal: {path}: offset 0xfd2 (4050): line 4: journal full: no room for entry 3 of the batch of 3 (50 bytes)"
    )
    bad = json.dumps(sha_entries(1)[0].to_dict()) + "\n" + '{"entry_type": "hash", "digest": "", "physical_sector": 1, "first_logical_sector": 2}\n'
    proc = run("append", path, stdin=bad)
    assert proc.stderr == "qjournal: <stdin>: line 2: digest is empty: a HASH entry needs a digest of at least 1 byte (D8); nothing was written\n"


# -- 3. digests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digest, message",
    [
        ("ab" * 31 + "a", f"argument --hash: {'ab' * 20!r}... is 63 hex digits, an odd number: a byte is two digits (one got lost?)"),
        ("ab cd", "argument --hash: not a hex string: 'ab cd' has whitespace at character 3"),
        ("abzz", "argument --hash: not a hex string: 'abzz' has 'z' at character 3"),
    ],
    ids=["odd length", "whitespace", "not hex"],
)
def test_a_digest_mistake_is_named(tmp_path: Path, digest: str, message: str) -> None:
    path = journal(tmp_path / "j.bin", 1, [])
    proc = run("append", path, "--hash", digest, "--physical", "1", "--logical", "2")
    assert proc.returncode == 1 and proc.stderr == f"qjournal: {message} (see 'qjournal append --help')\n"


def test_a_digest_of_another_length_is_warned_of_and_digest_size_refuses_it(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.bin", 2, sha_entries(2))
    proc = run("append", path, "--hash", "cd" * 20, "--physical", "1", "--logical", "2")
    assert proc.returncode == 0
    assert proc.stderr == (
        f"qjournal: warning: {path}: a digest of 20 bytes, where the journal's last HASH entry (at 0x32) has 32 bytes: "
        "a journal normally records one hash algorithm (written anyway; --digest-size N refuses any other length)\n"
    )
    before = Path(path).read_bytes()
    proc = run("append", path, "--hash", "cd" * 20, "--physical", "1", "--logical", "2", "--digest-size", "32")
    assert proc.returncode == 1
    assert proc.stderr == "qjournal: the digest is 20 bytes, not the 32 that --digest-size asks for; nothing was written\n"
    assert Path(path).read_bytes() == before
    proc = run("append", path, "--hash", SHA, "--physical", "1", "--logical", "2", "--digest-size", "32")
    assert proc.returncode == 0 and proc.stderr == ""


def test_a_mixed_journal_still_round_trips_through_dump_and_append(tmp_path: Path) -> None:
    entries = [HashEntry(b"\x01" * 32, 1, 1), HashEntry(b"\x02" * 20, 2, 2), HashEntry(b"\x03" * 64, 3, 3)]
    src = journal(tmp_path / "src.bin", 1, entries)
    dst = journal(tmp_path / "dst.bin", 1, [])
    lines = run("dump", src, "--output", "jsonl").stdout
    proc = run("append", dst, stdin=lines)
    assert proc.returncode == 0
    assert "line 2: a digest of 20 bytes, where the batch's first has 32 bytes (2 entries of the batch differ)" in proc.stderr
    assert [e[:3] for e in qjournal.read(dst)] == [e[:3] for e in entries]
    proc = run("append", dst, "--digest-size", "32", stdin=lines)
    assert proc.returncode == 1 and "line 2: the digest is 20 bytes, not the 32 that --digest-size asks for" in proc.stderr


# -- 4. pack's names --------------------------------------------------------------------------------------------


def test_pack_names_its_two_journals_the_same_way_in_the_library_and_the_command(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.write_bytes(b"\x00" * CLUSTER + b"\xff" * CLUSTER * 2 + b"\x00" * 100)
    with qjournal.create(image, offset=CLUSTER, length=2 * CLUSTER) as w:
        w.append_many(sha_entries(3))
    target = tmp_path / "t.bin"
    target.write_bytes(b"\x11" * 512 + b"\xff" * CLUSTER)
    usage = run("pack", "--help").stdout
    assert usage.startswith("usage: qjournal pack [-h]") and "SOURCE TARGET" in usage
    for opt in ("--source-offset", "--source-length", "--target-offset", "--target-length"):
        assert opt in usage
    proc = run("pack", str(image), str(target), "--source-offset", "4K", "--source-length", "8K",
               "--target-offset", "512", "--target-length", "4K")
    assert proc.returncode == 0, proc.stderr
    assert len(list(qjournal.read(target, 512, CLUSTER))) == 3
    report = qjournal.pack(image, tmp_path / "lib.bin", source_offset=CLUSTER, source_length=2 * CLUSTER,
                           target_offset=0, target_length=CLUSTER)
    assert report.num_live == 3
    # an existing TARGET that holds a journal: refused in pack's words, with its fix
    proc = run("pack", str(image), str(target), "--source-offset", "4K", "--source-length", "8K",
               "--target-offset", "512", "--target-length", "4K")
    assert proc.returncode == 1
    assert "pack does not overwrite it without --force" in proc.stderr and "create" not in proc.stderr
    # the names of 0.1 still work, in both
    proc = run("pack", str(image), str(tmp_path / "old.bin"), "--offset", "4K", "--length", "8K")
    assert proc.returncode == 0, proc.stderr
    with pytest.warns(DeprecationWarning, match=r"pack's (offset|length)= is deprecated: use target_") as caught:
        assert qjournal.pack(image, tmp_path / "old2.bin", source_offset=CLUSTER, source_length=2 * CLUSTER,
                             offset=0, length=CLUSTER).num_live == 3
    assert sorted(str(w.message) for w in caught if w.category is DeprecationWarning) == [
        "pack's length= is deprecated: use target_length=", "pack's offset= is deprecated: use target_offset="]


# -- 5. JSON input mistakes -------------------------------------------------------------------------------------


def test_json_input_mistakes_say_what_append_reads(tmp_path: Path) -> None:
    src = journal(tmp_path / "src.bin", 1, sha_entries(2))
    path = journal(tmp_path / "j.bin", 1, [])
    document = run("dump", src, "--output", "json").stdout
    proc = run("append", path, stdin=document)
    assert proc.returncode == 1
    assert proc.stderr == (
        "qjournal: <stdin>: line 1: this is the start of 'qjournal dump --output json', a single document: "
        "append reads JSON lines, one entry per line, as 'qjournal dump --output jsonl' writes them; nothing was written\n"
    )
    proc = run("append", path, stdin="[1, 2\n")
    assert proc.stderr.startswith("qjournal: <stdin>: line 1: not a JSON value (Expecting ',' delimiter at column 6): append reads JSON lines")
    entry = sha_entries(1)[0].to_dict()
    proc = run("append", path, stdin=json.dumps(entry) + "\n" + json.dumps({**entry, "digets": "00"}) + "\n")
    assert proc.stderr == (
        "qjournal: <stdin>: line 2: unknown field 'digets': an entry of this type has digest, entry_type, "
        "first_logical_sector, len_entry, ofs, physical_sector; nothing was written\n"
    )
    del entry["entry_type"]
    proc = run("append", path, stdin=json.dumps(entry) + "\n")
    assert proc.stderr == (
        "qjournal: <stdin>: line 1: entry is missing the field 'entry_type' (\"hash\", or an integer type code); "
        "nothing was written\n"
    )
    assert Path(path).read_bytes() == b"\xff" * CLUSTER


# -- 6. wording and help --------------------------------------------------------------------------------------


def test_counts_are_written_in_words(tmp_path: Path) -> None:
    src = journal(tmp_path / "src.bin", 1, sha_entries(1))
    proc = run("pack", src, str(tmp_path / "dst.bin"))
    assert proc.stdout.splitlines() == [
        f"{src}: 1 entry read (1 hash), 1 live written, 0 dropped (0 of unassigned types)",
        f"{tmp_path / 'dst.bin'}: 1 of 1 cluster used, tail at 0x32, 4046 bytes free",
    ]
    assert run("check", src).stdout == f"{src}: no problems found; 1 entry, 1 of 1 cluster used, tail at 0x32, 4046 bytes free.\n"


def test_create_without_a_size_names_the_options(tmp_path: Path) -> None:
    proc = run("create", str(tmp_path / "new.bin"))
    assert proc.returncode == 1
    assert proc.stderr == f"qjournal: {tmp_path / 'new.bin'}: --clusters (or --size) is needed to create a new journal file\n"


@pytest.mark.parametrize("command", ["info", "dump", "get", "check", "create", "append", "pack", "reset", "index", "verify"])
def test_an_unknown_option_points_to_its_command_and_its_help_has_its_own_exit_codes(command: str, tmp_path: Path) -> None:
    second = {"pack": [str(tmp_path / "y")], "index": [str(tmp_path / "y")], "verify": [str(tmp_path / "y")], "get": [SHA]}
    args = [str(tmp_path / "x"), *second.get(command, [])]
    proc = run(command, *args, "--bogus")
    assert proc.returncode == 1
    assert proc.stderr == f"qjournal: unrecognized arguments: --bogus (see 'qjournal {command} --help')\n"
    text = run(command, "--help").stdout
    codes = re.findall(r"^  (\d+)\s", text[text.index("exit codes:") :], re.M)
    want = {"check": ["0", "1", "2", "3", "130"], "index": ["0", "1", "130"]}
    assert codes == want.get(command, ["0", "1", "2", "130"]), (command, codes)
    assert not re.search(r"\bD\d+\b", text), f"{command} --help cites a rule number a wheel user cannot look up"


@pytest.mark.parametrize("command", ["create", "reset", "pack"])
def test_exit_2_of_a_write_command_is_in_its_help(command: str, tmp_path: Path) -> None:
    """An area that is not whole clusters is a corruption (exit 2) for the commands that format one too: their help says so."""
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\0" * 5000)
    args = {"create": [str(odd), "--force"], "reset": [str(odd), "--yes"],
            "pack": [journal(tmp_path / "src.bin", 1, sha_entries(1)), str(odd), "--force"]}[command]
    before = odd.read_bytes()
    proc = run(command, *args)
    assert proc.returncode == 2 and "[area_length]" in proc.stderr and odd.read_bytes() == before
    text = run(command, "--help").stdout
    assert re.search(r"^  2    .*not a whole number of 4096-byte clusters", text, re.M), text


def test_the_top_level_help_points_to_the_format_reference_once() -> None:
    text = run("--help").stdout
    assert text.count("docs/format.md") == 1 and "qjournal.format_reference_path()" in text


def test_an_empty_dump_is_said_on_stderr_and_machine_formats_stay_empty(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.bin", 1, [])
    proc = run("dump", path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", f"qjournal: {path}: no entries: the journal is empty\n")
    proc = run("dump", path, "--output", "jsonl")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


# -- 7. what durability costs ------------------------------------------------------------------------------------


def test_append_help_says_what_durability_costs() -> None:
    text = " ".join(run("append", "--help").stdout.split())
    assert "three fsyncs" in text and "one batch" in text and "durable=False" in text


# -- 8. reading without with ---------------------------------------------------------------------------------------


def test_reading_without_with_leaves_no_unclosed_file(tmp_path: Path) -> None:
    path = journal(tmp_path / "j.bin", 1, sha_entries(3))
    code = f"import qjournal; r = qjournal.read({path!r}).check(); print(len(list(qjournal.read({path!r}))))"
    proc = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "3\n" and "ResourceWarning" not in proc.stderr, proc.stderr

"""qjournal append: one entry from the options, or a batch of JSON lines (what 'dump --output jsonl' writes).

Strategy: everything the user typed or piped is checked before the journal is opened (a bad line is
'line N: ...' and nothing is written); then the whole batch is one atomic append by the library's
writer, which validates the journal and erases only what an interrupted append left. Errors of a
batch are placed as the user counts: the input line, from 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from qjournal.cli import console
from qjournal.cli.arguments import add_area, add_jobs, add_unaligned, body, digest, digest_size, sector, type_code
from qjournal.cli.base import EXIT_CORRUPT, EXIT_ERROR, EXIT_OK, Command, UsageError
from qjournal.cli.console import err, out, shown
from qjournal.errors import JournalArgumentError, JournalFullError, JournalIOError
from qjournal.wording import count

if TYPE_CHECKING:  # the library is imported by the command that runs, not by the command line's start-up
    from qjournal.entries import Entry, HashEntry


def summary(done: str, *lines: str) -> None:
    """Print a write command's summary once its work is done (``done`` says what): a failed stdout names itself."""
    try:
        for line in lines:
            out(line)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise JournalIOError(
            f"{done}, but its summary could not be written to standard output ({exc.strerror or exc})",
            source="<stdout>",
        ) from None



def cmd_append(args: argparse.Namespace) -> int:
    """qjournal append: one entry from the options, or a batch of JSON lines."""
    from qjournal.entries import HashEntry, RawEntry, check_entry  # noqa: PLC0415
    from qjournal.writer import open_for_append  # noqa: PLC0415

    hash_opts = [args.digest, args.physical, args.logical]
    raw_opts = [args.entry_type, args.body]
    lines: list[int] | None = None  # the input line of each entry of a batch
    if any(o is not None for o in hash_opts):
        if any(o is None for o in hash_opts):
            raise UsageError("a HASH entry needs --hash, --physical and --logical (see 'qjournal append --help')")
        if any(o is not None for o in raw_opts) or args.from_file is not None:
            raise UsageError("--hash does not combine with --type, --body or --from (see 'qjournal append --help')")
        entries: list[Entry] = [HashEntry(args.digest, args.physical, args.logical)]
        check_entry(entries[0])
    elif any(o is not None for o in raw_opts):
        if args.entry_type is None:
            raise UsageError("--body needs --type (see 'qjournal append --help')")
        if args.from_file is not None:
            raise UsageError("--type does not combine with --from (see 'qjournal append --help')")
        entries = [RawEntry(args.entry_type, args.body or b"")]
        check_entry(entries[0])
    else:
        entries, lines = _read_batch(args.from_file)
    _check_digest_sizes(entries, lines, args.digest_size, args.from_file)
    with open_for_append(
        args.path, args.offset, args.length, erase_foreign_data=args.erase_foreign_data, jobs=args.jobs,
        unaligned_offset=args.unaligned_offset,
    ) as w:
        if args.digest_size is None:
            _warn_digest_sizes(args.path, entries, lines, w.last_hash())
        try:
            placed = w.append_many(entries)
        except JournalFullError as exc:
            raise _full_in_words(exc, lines, len(entries)) from None
        tail = w.ofs_tail
    done = f"the batch of {count(len(placed), 'entry', 'entries')} was committed to {args.path}"
    if len(placed) == 1:
        e = placed[0]
        summary(done, f"{shown(args.path)}: appended a {_kind(e)} entry of {e.len_entry} bytes at {e.ofs:#x}; tail at {tail:#x}")
    elif placed:
        summary(done, f"{shown(args.path)}: appended {len(placed)} entries at {placed[0].ofs or 0:#x}-{placed[-1].ofs or 0:#x}; "
                f"tail at {tail:#x}")
    else:
        summary(f"nothing was appended to {args.path}", f"{shown(args.path)}: nothing to append; tail at {tail:#x}")
    return EXIT_OK


def _where(index: int, lines: list[int] | None, count_of: int) -> str:
    """Where entry ``index`` (from 0) of a batch came from, in the user's words: its input line, counted from 1."""
    return f"line {lines[index]}" if lines is not None else f"entry {index + 1} of {count_of}"


def _check_digest_sizes(entries: list[Entry], lines: list[int] | None, size: int | None, name: str | None) -> None:
    """--digest-size N: refuse, before anything is opened, a HASH entry whose digest is another length."""
    from qjournal.entries import HashEntry  # noqa: PLC0415

    if size is None:
        return
    for i, e in enumerate(entries):
        if isinstance(e, HashEntry) and len(e.digest) != size:
            where = f"{_where(i, lines, len(entries))}: " if lines is not None else ""
            raise JournalArgumentError(
                f"{where}the digest is {count(len(e.digest), 'byte')}, not the {size} that --digest-size asks for; "
                "nothing was written",
                source=name if lines is not None else None,
            )


def _warn_digest_sizes(path: str, entries: list[Entry], lines: list[int] | None, last: HashEntry | None) -> None:
    """A journal normally records one hash algorithm: warn of a digest whose length differs from the journal's last."""
    from qjournal.entries import HashEntry  # noqa: PLC0415

    first = next((e for e in entries if isinstance(e, HashEntry)), None)
    ref = last if last is not None else first
    if ref is None:
        return
    odd = [(i, e) for i, e in enumerate(entries) if isinstance(e, HashEntry) and len(e.digest) != len(ref.digest)]
    if not odd:
        return
    i, e = odd[0]
    against = f"the journal's last HASH entry (at {ref.ofs:#x}) has" if last is not None else "the batch's first has"
    more = f" ({len(odd)} entries of the batch differ)" if len(odd) > 1 else ""
    where = f"{_where(i, lines, len(entries))}: " if lines is not None else ""
    err(
        f"warning: {shown(path)}: {where}a digest of {count(len(e.digest), 'byte')}, where {against} "
        f"{count(len(ref.digest), 'byte')}{more}: a journal normally records one hash algorithm "
        "(written anyway; --digest-size N refuses any other length)"
    )


def _full_in_words(exc: JournalFullError, lines: list[int] | None, num: int) -> JournalFullError:
    """The writer's refusal of a batch entry, placed as the user counts: the input line, from 1."""
    if lines is None or exc.entry_index is None:
        return exc
    return JournalFullError(
        f"{_where(exc.entry_index, lines, num)}: " + exc.reason, exc.offset, len_entry=exc.len_entry,
        max_len_entry=exc.max_len_entry, entry_index=exc.entry_index, num_clusters=exc.num_clusters,
        area_offset=exc.area_offset, source=exc.source, hint=exc.hint,
    )


def _kind(e: Entry) -> str:
    from qjournal.entries import HashEntry  # noqa: PLC0415
    from qjournal.format import type_name  # noqa: PLC0415

    return "hash" if isinstance(e, HashEntry) else f"type {type_name(e.type_code)}"


def _read_batch(from_file: str | None) -> tuple[list[Entry], list[int]]:
    """Every entry of the JSON lines input, each checked, and its line number; a bad line raises ``line N: ...``."""
    from qjournal.entries import read_json_lines  # noqa: PLC0415

    if from_file is None or from_file == "-":
        stream, name = sys.stdin.buffer, "<stdin>"
        if console.isatty(sys.stdin):
            sys.stderr.write("qjournal: reading JSON lines from the terminal (end with Ctrl-D)\n")
    else:
        try:
            stream = open(from_file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise JournalIOError(f"cannot open: {exc.strerror or exc}", source=from_file) from None
        name = from_file
    entries: list[Entry] = []
    numbers: list[int] = []
    try:
        for number, entry in read_json_lines(stream):
            entries.append(entry)
            numbers.append(number)
    except JournalArgumentError as exc:
        raise JournalArgumentError(f"{exc.reason}; nothing was written", source=name) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return entries, numbers


def _append_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p)
    add_unaligned(p)
    p.add_argument("--hash", dest="digest", type=digest, metavar="HEX", help="digest of a HASH entry, in hex (no spaces)")
    p.add_argument("--physical", type=sector, metavar="N", help="physical_sector of the HASH entry")
    p.add_argument("--logical", type=sector, metavar="N", help="first_logical_sector of the HASH entry")
    p.add_argument(
        "--type", dest="entry_type", type=type_code, metavar="CODE", help="type code of an unassigned-type entry (0x00, 0x03-0xfe)"
    )
    p.add_argument("--body", type=body, metavar="HEX", help="body of the unassigned-type entry, in hex (default empty)")
    p.add_argument("--from", dest="from_file", metavar="FILE", help="read the JSON lines from FILE instead of stdin ('-': stdin)")
    p.add_argument(
        "--digest-size", type=digest_size, metavar="N",
        help="refuse a HASH entry whose digest is not N bytes (32 for SHA-256)",
    )
    p.add_argument(
        "--erase-foreign-data", action="store_true",
        help="erase bytes past the tail that are not what an interrupted append leaves (refused by default: "
        "they may be another file's data; look at them with 'qjournal check' first)",
    )
    add_jobs(p, "validation")


APPEND = Command(
    "append", cmd_append, "append one entry, or JSON lines from stdin (as dump --output jsonl writes)",
    ("Append one HASH entry (--hash, --physical, --logical) or one entry of an unassigned type "
     "(--type, --body). With no entry option, read JSON lines from stdin (or --from FILE), one entry "
     "per line, the schema 'qjournal dump --output jsonl' writes: every line is checked first, a bad "
     "one is reported as 'line N: ...' and nothing is written; then all the entries are appended as "
     "one atomic batch, which is refused whole if it does not fit. Blank lines, and the END and NONE "
     "records of 'dump --all', are skipped.",
     "A journal normally records one hash algorithm: a digest whose length differs from the journal's "
     "last HASH entry is written with a warning; --digest-size N refuses any other length.",
     "Opening a journal for append validates the whole area, then erases what an interrupted append "
     "left after its tail, and nothing else: other bytes there (data after the journal, an offset one "
     "cluster off) are refused, nothing written, unless --erase-foreign-data. A corrupt journal is "
     "refused. An area inside a larger file needs --length with --offset.",
     "What durability costs: every append is made durable before the command returns, in three fsyncs "
     "(its first byte, the rest, the commit byte), whatever its size. Each 'qjournal append' also "
     "validates the whole journal. So append many entries as one batch: 10,000 entries in one batch "
     "take a few hundredths of a second; 10,000 separate appends take seconds of fsyncs alone (in "
     "Python, 'durable=False' flushes instead, safe against a crash of the process but not of the "
     "machine).",),
    (
        (EXIT_OK, "success"),
        (EXIT_ERROR, "usage or I/O error, or refused with nothing written (journal full, locked, "
                     "bytes past the tail that are not the journal's)"),
        (EXIT_CORRUPT, "the journal is corrupt (nothing written)"),
    ),
    _append_arguments,
    examples="  qjournal append j.bin --hash $(printf data | sha256sum | cut -c1-64) --physical 2048 --logical 0\n"
    "  qjournal dump a.bin --output jsonl | qjournal append b.bin",
)

"""The read commands: info, dump, get, check. None of them writes a byte.

Strategy: each opens the area through :func:`~qjournal.cli.console.open_reader`, asks the library
(replay, the check engine, the live view, the dump formatter) and prints; a corruption is raised for
:func:`qjournal.cli.main` to say, after whatever was printed up to it.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qjournal.cli.arguments import add_area, add_jobs, add_output, digest_prefix, max_problems
from qjournal.cli.base import EXIT_ANOMALIES, EXIT_CORRUPT, EXIT_ERROR, EXIT_OK, Command, ExitCodes, UsageError
from qjournal.cli.console import Progress, err, human_size, open_reader, out, out_bytes, shown
from qjournal.errors import CorruptJournalError, at_offset, spell
from qjournal.wording import count

if TYPE_CHECKING:  # the library is imported by the command that runs, not by the command line's start-up
    from qjournal.checking import CheckReport
    from qjournal.dumping import Run
    from qjournal.metadata import JournalMetadata
    from qjournal.reader import JournalReader

LIVE_BATCH = 1024
"""Live entries formatted at a time by ``dump --live``."""

READ_CODES: ExitCodes = (
    (EXIT_OK, "success"),
    (EXIT_ERROR, "usage or I/O error (a missing file, a bad offset or length)"),
    (EXIT_CORRUPT, "the journal is corrupt: the error names the rule and the byte offset"),
)


# -- info ----------------------------------------------------------------------


def metadata_line(meta: JournalMetadata | None, why_not: str | None) -> str | None:
    """What info and check say of the journal's first entry when it is, or looks like, the metadata entry of D30."""
    from qjournal.metadata import TYPE_METADATA  # noqa: PLC0415

    if meta is not None:
        return (f"metadata: {meta.describe()} (the first entry, type {TYPE_METADATA:#04x}: qjournal's metadata entry, "
                f"D30; an unassigned type to the spec, not an anomaly)")
    return None if why_not is None else f"metadata: none: {why_not}"


def cmd_info(args: argparse.Namespace) -> int:
    """qjournal info: the journal's state."""
    from qjournal.format import LEN_CLUSTER, LEN_SHA256_ENTRY  # noqa: PLC0415 - see TYPE_CHECKING above
    from qjournal.metadata import first_of  # noqa: PLC0415
    from qjournal.wording import json_document  # noqa: PLC0415

    with open_reader(args) as reader, Progress(reader.len_area, "info") as progress:
        state = reader.state(jobs=args.jobs, progress=progress)
        area_offset = reader.area.area_offset
        with reader.live() as live:
            num_live, num_superseded = live.num_live, live.num_superseded
        meta, why_not = first_of(reader)
    room = state.max_len_entry
    sha256 = state.num_fit(LEN_SHA256_ENTRY)
    if args.output == "json":
        doc = {
            "filename": reader.name, "area_offset": area_offset, **state.to_dict(area_offset),
            "max_len_entry": room, "num_sha256_entries_fit": sha256,
            "num_live": num_live, "num_superseded": num_superseded,
            "metadata": None if meta is None else meta.to_dict(), "metadata_note": why_not,
        }
        out(json_document(doc))
        return EXIT_OK
    by_type = ", ".join(
        f"{name}: {count}" for name, count in sorted(state.entries_by_type.items(), key=lambda kv: (kv[0] != "hash", kv[0]))
    )
    out(f"file: {shown(reader.name)}")
    out(f"area offset: {area_offset} ({area_offset:#x})")
    out(f"area size: {human_size(state.len_area)} ({state.len_area} bytes)")
    out(f"clusters used: {state.num_clusters_used} of {state.num_clusters} ({LEN_CLUSTER} bytes each)")
    out(f"tail: {state.ofs_tail:#x} ({state.ofs_tail})")
    out(f"free: {human_size(state.len_free)} ({state.len_free} bytes)")
    if room:
        out(
            f"room: the next entry can be up to {room} bytes; {sha256} more SHA-256 "
            f"{'entry fits' if sha256 == 1 else 'entries fit'} ({LEN_SHA256_ENTRY} bytes each, with the END each cluster needs)"
        )
    else:
        out("room: none: no entry fits (an entry needs its size plus the 2 bytes of the END after it)")
    out(f"full: {'yes' if state.is_full else 'no'}")
    out(f"entries: {state.num_entries}" + (f" ({by_type})" if by_type else ""))
    line = metadata_line(meta, why_not)
    if line is not None:
        out(line)
    out(
        f"live: {count(num_live, 'digest')} with a live HASH entry; "
        f"{count(num_superseded, 'HASH entry', 'HASH entries')} superseded by a later one with the same digest"
    )
    if not state.anomalies:
        out("anomalies: none")
    else:
        out(f"anomalies: {state.num_anomalies}")
        for p in state.anomalies:
            out(f"    {at_offset(p.ofs, area_offset)}: {p.code}: {p.reason}")
        if state.num_more_anomalies:
            out(f"    ... and {state.num_more_anomalies} more ('qjournal check --max-problems N' lists more)")
    return EXIT_OK


def _info_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p)
    add_output(p, ("human", "json"))
    add_jobs(p)


INFO = Command(
    "info", cmd_info, "area size, clusters used, tail, room for the next entry, entry counts, anomalies",
    ("Show where a journal stands: area size, clusters used of total, the tail, the free bytes and how "
     "large the next entry may be, entry counts by type, the live digests and the HASH entries they "
     "superseded (a second pass over the area, through the live view), and anomalies (like "
     "'qemu-img info').",),
    READ_CODES, _info_arguments,
)


# -- dump ----------------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    """qjournal dump: the replayed entries, as lines, JSON, JSON lines or a hex view."""
    from qjournal.wording import json_line  # noqa: PLC0415

    if args.hex and args.output != "human":
        raise UsageError(f"--hex is a human view; it does not combine with --output {args.output} (see 'qjournal dump --help')")
    if args.live and (args.hex or args.all):
        raise UsageError("--live shows the live HASH entries only; it does not combine with --hex or --all (see 'qjournal dump --help')")
    with open_reader(args) as reader, Progress(reader.len_area, "dump") as progress:
        if args.hex:
            return _dump_hex(reader, progress)
        area_offset = reader.area.area_offset
        error: CorruptJournalError | None = None
        if args.output == "json":
            head = {"filename": reader.name, "area_offset": area_offset, "len_area": reader.len_area, "num_clusters": reader.num_clusters}
            out(json_line(head)[:-1] + ', "entries": [')
            args.json_done = True  # from here a failure is said inside this document
        first = True
        num_shown = 0
        for run in _dump_runs(reader, args, progress):
            error = run.error
            if not run.num_items:
                continue
            num_shown += run.num_items
            if args.output == "json":
                out_bytes(b"" if first else b",\n", run.data)
                first = False
            else:
                out_bytes(run.data, b"\n")
        if args.output == "json":
            tail = "\n]" if not first else "]"
            if error is not None:
                tail += ', "error": ' + json_line(error.to_dict(cli=True))
            out(tail + "}")
    if error is not None:
        raise error
    if not num_shown and args.output == "human":  # machine formats stay empty; a person is told why there is nothing
        err(f"{shown(reader.name)}: no entries: the journal is empty")
    return EXIT_OK


def _dump_runs(reader: JournalReader, args: argparse.Namespace, progress: Progress) -> Iterator[Run]:
    """What dump prints: replay formatted a run of clusters at a time, or, with --live, the live entries."""
    from qjournal.dumping import Marker, Run, format_items, runs  # noqa: PLC0415
    from qjournal.entries import Entry  # noqa: PLC0415

    if not args.live:
        yield from runs(reader.area, args.output, markers=args.all, progress=progress, jobs=args.jobs)
        return
    with reader.live(progress=progress.callback) as live:
        batch: list[Entry | Marker] = []
        for e in live.values():
            batch.append(e)
            if len(batch) == LIVE_BATCH:
                yield Run(format_items(batch, args.output).encode(), len(batch), None, False)
                batch = []
        yield Run(format_items(batch, args.output).encode(), len(batch), None, True)


def _dump_hex(reader: JournalReader, progress: Progress) -> int:
    from qjournal import hexview  # noqa: PLC0415
    from qjournal.dumping import walk_clusters  # noqa: PLC0415
    from qjournal.format import LEN_CLUSTER  # noqa: PLC0415

    area_offset = reader.area.area_offset
    out(
        f"journal {shown(reader.name)}: area at file offset {area_offset:#x}, {reader.len_area} bytes, "
        f"{count(reader.num_clusters, 'cluster')} of {LEN_CLUSTER} bytes"
    )
    for line in hexview.legend_lines():
        out(line)
    last = -1
    for walked in walk_clusters(reader.area, progress):
        base = walked.cluster_index * LEN_CLUSTER
        view = hexview.cluster_view(walked.buf, base, walked.error, walked.cluster, walked.entries)
        out()
        out(hexview.cluster_header(walked.cluster_index, base, view))
        for line in hexview.render_spans(view.spans, walked.buf, base):
            out(line)
        if walked.error is not None:
            raise walked.error
        last = walked.cluster_index
    summary = hexview.rest_summary(reader.area, last + 1)
    if summary:
        out()
        out(summary)
    return EXIT_OK


def _dump_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p)
    add_output(p, ("human", "json", "jsonl"))
    p.add_argument("--all", action="store_true", help="also show the END entries and the NONE where replay stopped")
    p.add_argument(
        "--live", action="store_true",
        help="only the live HASH entries: the last one per digest, in the order of those last entries",
    )
    add_jobs(p, "formatting")
    p.add_argument(
        "--hex", action="store_true",
        help="annotated hex view of each replayed cluster, every byte labelled by its field "
        "(the clusters after the tail are summarised)",
    )


DUMP = Command(
    "dump", cmd_dump, "the replayed entries, one per line (or JSON, or an annotated hex view)",
    ("Print the entries replay yields, in order, one per line: offset, type, size, and for HASH the "
     "digest and both sectors. --output jsonl writes one JSON object per entry, the schema "
     "'qjournal append' reads, so 'qjournal dump A --output jsonl | qjournal append B' copies A's "
     "entries into B. Offsets are area offsets (add --offset for the file position).",),
    READ_CODES, _dump_arguments,
)


# -- get -----------------------------------------------------------------------


MIN_PREFIX = 4
"""Hex digits a digest prefix needs (as git asks of an object name's)."""
MAX_CANDIDATES = 10
"""Candidates an ambiguous prefix names."""


def cmd_get(args: argparse.Namespace) -> int:
    """qjournal get: the live entry of each digest (D9), or of the one digest a prefix names, as dump prints it."""
    from qjournal.dumping import format_item  # noqa: PLC0415
    from qjournal.entries import json_line as entry_json_line  # noqa: PLC0415

    failed = False
    with open_reader(args) as reader, Progress(reader.len_area, "get") as progress:
        name = shown(reader.name)
        with reader.live(progress=progress.callback) as live:
            found: dict[str, list[bytes]] = {}
            for wanted in args.digests:  # a whole digest first, as git takes a full name before a prefix
                exact = bytes.fromhex(wanted) if len(wanted) % 2 == 0 else None
                found[wanted] = [exact] if exact is not None and exact in live else []
            prefixes = [w for w in args.digests if not found[w] and len(w) >= MIN_PREFIX]
            if prefixes:
                for digest_of in live:  # one pass over the live digests (no read of the journal)
                    text = digest_of.hex()
                    for p in prefixes:
                        if text.startswith(p):
                            found[p].append(digest_of)
            for wanted in args.digests:
                matches = found[wanted]
                if len(matches) == 1:
                    entry = live[matches[0]]
                    out(entry_json_line(entry) if args.output == "json" else format_item(entry))
                    continue
                failed = True
                if not matches:
                    short = f" (a prefix needs at least {MIN_PREFIX} hex digits)" if len(wanted) < MIN_PREFIX else ""
                    err(f"{name}: no live entry with digest {wanted}{'...' if short or len(wanted) % 2 else ''} "
                        f"(no HASH entry replay yields has it){short}")
                else:
                    shown_ones = ", ".join(m.hex() for m in matches[:MAX_CANDIDATES])
                    more = f" and {len(matches) - MAX_CANDIDATES} more" if len(matches) > MAX_CANDIDATES else ""
                    err(f"{name}: digest prefix {wanted} is ambiguous: {len(matches)} live digests start with it: "
                        f"{shown_ones}{more}")
    return EXIT_ERROR if failed else EXIT_OK


def _get_arguments(p: argparse.ArgumentParser) -> None:
    add_area(p)
    p.add_argument("digests", nargs="+", type=digest_prefix, metavar="DIGEST",
                   help=f"a digest in hex, as dump prints it, or its first hex digits (at least {MIN_PREFIX}) when no "
                   "other live digest starts with them")
    add_output(p, ("human", "json"))


GET = Command(
    "get", cmd_get, "the live entry of a digest: the last HASH entry with it",
    ("Print the live HASH entry of each DIGEST: the last entry with that digest that replay yields, "
     "the one a lookup uses. The line is dump's (with --output json, dump's JSON object, one per "
     "line). A digest with no entry is named on stderr and the exit code is 1.",
     f"As git takes an object name, DIGEST may be the first hex digits of a digest (at least {MIN_PREFIX}) "
     "when one live digest only starts with them; a prefix that several start with is refused (exit 1), "
     "naming them. A whole digest is looked up first.",),
    (
        (EXIT_OK, "every digest has a live entry"),
        (EXIT_ERROR, "a digest has no live entry, a prefix is ambiguous, or a usage or I/O error"),
        (EXIT_CORRUPT, "the journal is corrupt: the error names the rule and the byte offset"),
    ),
    _get_arguments,
    examples="  qjournal get j.bin $(printf data | sha256sum | cut -c1-64)\n"
    "  qjournal get j.bin DIGEST --output json\n"
    "  qjournal get j.bin 3a6eb079",
)


# -- check ---------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """qjournal check: every problem with its offset; exit 0, 2 or 3."""
    area_offset = args.offset
    try:
        reader = open_reader(args)
    except CorruptJournalError as exc:
        if exc.code != "area_length":
            raise
        from qjournal.checking import CheckReport  # noqa: PLC0415

        return _report_check(CheckReport.of_error(exc), exc.source or args.path, area_offset, args)
    with reader, Progress(reader.len_area, "check") as progress:
        from qjournal.checking import DEFAULT_MAX_PROBLEMS, NOT_A_JOURNAL_PROBLEMS  # noqa: PLC0415

        report = reader.check(progress, jobs=args.jobs, max_problems=args.max_problems or DEFAULT_MAX_PROBLEMS,
                              give_up_after=args.max_problems or NOT_A_JOURNAL_PROBLEMS)
        meta: tuple[JournalMetadata | None, str | None] = (None, None)
        if report.stopped_at is None:
            from qjournal.metadata import first_of  # noqa: PLC0415

            with contextlib.suppress(CorruptJournalError):  # a first entry that is corrupt is the report's
                meta = first_of(reader)
    return _report_check(report, reader.name, reader.area.area_offset, args, reader.num_clusters, meta=meta)


def _report_check(report: CheckReport, name: str, area_offset: int, args: argparse.Namespace, num_clusters: int = 0, *,
                  meta: tuple[JournalMetadata | None, str | None] = (None, None)) -> int:
    from qjournal.format import LEN_CLUSTER  # noqa: PLC0415
    from qjournal.wording import json_document  # noqa: PLC0415

    corrupt = report.is_corrupt or (args.strict and report.has_anomalies)
    code = EXIT_CORRUPT if corrupt else EXIT_ANOMALIES if report.has_anomalies else EXIT_OK
    status = {EXIT_OK: "clean", EXIT_CORRUPT: "corrupt", EXIT_ANOMALIES: "anomalies"}[code]
    if args.output == "json":
        doc = {
            "filename": name, "area_offset": area_offset, "strict": args.strict, "status": status, "exit_code": code,
            **report.to_dict(area_offset, cli=True),
            "metadata": None if meta[0] is None else meta[0].to_dict(), "metadata_note": meta[1],
        }
        out(json_document(doc))
        return code
    name = shown(name)
    for p in report.problems:
        what = "corruption" if p.is_corruption else "anomaly, an error under --strict" if args.strict else "anomaly"
        out(f"{name}: {at_offset(p.ofs, area_offset)}: {what} [{p.code}]: {p.reason}")
    n_bad, n_odd = report.num_corruptions, report.num_anomalies
    if code == EXIT_OK:
        s = report.state
        assert s is not None
        out(
            f"{name}: no problems found; {count(s.num_entries, 'entry', 'entries')}, {s.num_clusters_used} of "
            f"{count(s.num_clusters, 'cluster')} used, tail at {s.ofs_tail:#x}, {s.len_free} bytes free."
        )
    elif code == EXIT_ANOMALIES:
        out(
            f"{name}: {count(n_odd, 'anomaly', 'anomalies')}, no corruption: the journal replays, "
            "but a check reports them (--strict fails them)."
        )
    elif not n_bad:
        out(
            f"{name}: {count(n_odd, 'anomaly', 'anomalies')}, no corruption; "
            "--strict counts anomalies as corruption: the check fails."
        )
    elif report.stopped_at is not None:
        shown_to = report.stopped_at // LEN_CLUSTER
        out(
            f"{name}: stopped after {count(report.num_corruptions + report.num_anomalies, 'problem')} in the first "
            f"{count(shown_to, 'cluster')} of {num_clusters}: "
            "this area does not start like a journal (--max-problems N looks further)."
        )
    else:
        out(f"{name}: {count(n_bad, 'corruption')}, {count(n_odd, 'anomaly', 'anomalies')}: the journal is corrupt.")
    line = metadata_line(*meta)
    if line is not None:
        out(f"{name}: {line}")
    if report.num_not_kept:
        out(f"{name}: {count(report.num_not_kept, 'more problem')} not listed (--max-problems N lists more).")
    if report.hint is not None:
        out(f"{name}: hint: {spell(report.hint, cli=True)}")
    return code


def _check_arguments(p: argparse.ArgumentParser) -> None:
    from qjournal.checking import DEFAULT_MAX_PROBLEMS, NOT_A_JOURNAL_PROBLEMS  # noqa: PLC0415

    add_area(p)
    add_output(p, ("human", "json"))
    add_jobs(p)
    p.add_argument("--strict", action="store_true", help="count anomalies as corruption (exit 2)")
    p.add_argument(
        "--max-problems", type=max_problems, default=None, metavar="N",
        help=f"list at most N problems (default {DEFAULT_MAX_PROBLEMS}) and count the rest; an area that does not "
        f"start like a journal is checked no further than N problems (default {NOT_A_JOURNAL_PROBLEMS})",
    )


CHECK = Command(
    "check", cmd_check, "validate the whole area; exit 0 clean, 2 corrupt, 3 anomalies",
    ("Validate the whole area against the format and print every problem with its offset (like "
     "'qemu-img check'): corruption (what replay cannot go past) and anomalies (what a crash or a stray "
     "write leaves: a torn write, a dirty tail, entries of unassigned types, dirty END padding).",),
    (
        (EXIT_OK, "no problem found"),
        (EXIT_ERROR, "usage or I/O error"),
        (EXIT_CORRUPT, "at least one corruption (with --strict, an anomaly too)"),
        (EXIT_ANOMALIES, "no corruption, but anomalies"),
    ),
    _check_arguments,
)

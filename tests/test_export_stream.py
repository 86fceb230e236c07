"""export end to end: the streamed, chunked export equals upstream's reader rule applied to the
same files in one go, and the CLI turns every bad input into one line on stderr and exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples
from typer.testing import CliRunner

from chat_archiver.cli import app
from export import stream
from export.stream import CHUNK_MINUTES, iter_chunks, write_export
from export.window import Filters, Window, plan_chunks
from formats.canonical import batch_time_of, canonical_json
from tests.archives import write_batch
from tests.strategies import archive_records, export_windows, merge_archives
from tests.test_export_golden import upstream_rule

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core


def window_records(root: str, channel: str, window: Window, chunk_minutes: int = CHUNK_MINUTES) -> Any:
    """The records an export of `window` emits, through the chunk plan as the server streams them."""
    return iter_chunks(root, channel, window, plan_chunks(window, chunk_minutes))


def write_archives(root: str, archives: list[list[dict[str, Any]]]) -> None:
    """Each archive's records as files per minute (several archives: several files a minute)."""
    for records in archives:
        by_minute: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            by_minute[batch_time_of(r["time"])].append(r)
        for minute, group in by_minute.items():
            write_batch(root, "chan", minute, group)


@settings(max_examples=examples(0.2))
@given(merge_archives(), export_windows, st.integers(1, 3))
def test_streamed_json_equals_upstreams_rule(
    archives: list[list[dict[str, Any]]], window: tuple[int, int], chunk: int
) -> None:
    with tempfile.TemporaryDirectory() as root:
        write_archives(root, archives)
        Path(root, "chan", "chat").mkdir(parents=True, exist_ok=True)
        start, end = window
        expected = upstream_rule(root, "chan", start, end)
        got = list(window_records(root, "chan", Window(start, end), chunk_minutes=chunk))
        assert [canonical_json(r) for r in got] == [canonical_json(r) for r in expected]
        out = io.BytesIO()
        write_export(iter(window_records(root, "chan", Window(start, end), chunk_minutes=chunk)), "json", out)
        assert json.loads(out.getvalue()) == json.loads(json.dumps(expected))


def test_long_window_streams_in_chunks(tmp_path: Path) -> None:
    """Three hours, one message a minute: every one comes out once, in order, whatever the chunk."""
    t0 = 1_700_000_040
    for m in range(180):
        t = t0 + 60 * m + 30
        write_batch(
            str(tmp_path),
            "chan",
            t0 + 60 * m,
            [
                {
                    "command": "PRIVMSG",
                    "params": ["#chan", str(m)],
                    "sender": "a",
                    "user": "a",
                    "host": None,
                    "tags": {"id": f"m{m}", "tmi-sent-ts": str(t * 1000)},
                    "receivers": {"h.s.0": t + 0.2},
                    "time": t,
                    "time_range": 0,
                }
            ],
        )
    for chunk in (1, 7, 10, 500):
        got = [
            r["params"][1]
            for r in window_records(str(tmp_path), "#Chan", Window(t0, t0 + 3 * 3600), chunk_minutes=chunk)
        ]
        assert got == [str(m) for m in range(180)], chunk


# ---------------------------------------------------------------- CLI errors


def export(*args: str) -> Any:
    return CliRunner().invoke(app, ["export", *args])


def one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    write_batch(
        str(tmp_path),
        "chan",
        1_700_000_040,
        [
            {
                "command": "JOIN",
                "params": ["#chan"],
                "sender": "a",
                "user": "a",
                "host": None,
                "tags": None,
                "receivers": {"h.s.0": 1_700_000_100.0},
                "time": 1_700_000_045.0,
                "time_range": 60,
            }
        ],
    )
    root = str(tmp_path)
    one_line_error(export(root, "chan", "--since", "soon", "--until", "1"), "soon")
    one_line_error(export(root, "chan", "--since", "1700000100", "--until", "1700000000"), "empty")
    one_line_error(export(root, "other", "--since", "1700000000", "--until", "1700000100"), "other")
    one_line_error(export(str(tmp_path / "nope"), "chan", "--since", "1", "--until", "2"), "not a folder")
    bad_format = export(root, "chan", "--since", "1", "--until", "2", "--format", "xml")
    assert bad_format.exit_code == 2 and "'xml' is not one of 'json', 'jsonl', 'text', 'irc'" in bad_format.stderr
    one_line_error(
        export(
            root,
            "chan",
            "--since",
            "1700000000",
            "--until",
            "1700000100",
            "--out",
            str(tmp_path / "missing" / "out.json"),
        ),
        "missing",
    )


def _join(t: float, who: str) -> dict[str, Any]:
    return {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": who,
        "user": who,
        "host": None,
        "tags": None,
        "receivers": {"h.s.0": t + 55.0},
        "time": t,
        "time_range": 60,
    }


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_keeps_going_past_a_damaged_file_and_names_file_and_line(tmp_path: Path, jobs: str) -> None:
    """The README's promise: a damaged line of a batch file is reported FILE:LINE and skipped,
    everything readable is exported (the file's good line too), exit 1 (serially and over worker
    processes: 3 hours is two parts)."""
    t0 = 1_700_000_040
    path, _ = write_batch(str(tmp_path), "chan", t0, [_join(t0 + 5.0, "a")])
    write_batch(str(tmp_path), "chan", t0 + 7200, [_join(t0 + 7205.0, "b")])
    Path(path).write_bytes(Path(path).read_bytes() + b'{"broken\n')
    result = export(
        str(tmp_path),
        "chan",
        "--since",
        str(t0 - 60),
        "--until",
        str(t0 + 3 * 3600),
        "--format",
        "jsonl",
        "--jobs",
        jobs,
    )
    assert result.exit_code == 1, result.output
    assert [json.loads(line)["sender"] for line in result.stdout.splitlines()] == ["a", "b"]
    assert result.stderr.count(f"{path}:2") == 1 and "Traceback" not in result.stderr


def test_parallel_parts_give_the_serial_bytes(tmp_path: Path, monkeypatch: Any) -> None:
    """Parts stitched from worker processes equal the serial export byte for byte in every format,
    across a UTC midnight (text day headers) and with filters that leave parts empty."""
    from export import parts, shell

    t0 = 1_700_002_800 + 1800  # 2023-11-14T23:30Z; the window runs past midnight
    for m in range(100):
        t = t0 + 60 * m + 30
        who = "rare" if m % 37 == 0 else "a"
        write_batch(
            str(tmp_path),
            "chan",
            t0 + 60 * m,
            [
                {
                    "command": "PRIVMSG",
                    "params": ["#chan", str(m)],
                    "sender": who,
                    "user": who,
                    "host": None,
                    "tags": {"id": f"m{m}", "tmi-sent-ts": str(t * 1000)},
                    "receivers": {"h.s.0": t + 0.2},
                    "time": t,
                    "time_range": 0,
                },
                {
                    "command": "JOIN",
                    "params": ["#chan"],
                    "sender": "j",
                    "user": "j",
                    "host": None,
                    "tags": None,
                    "receivers": {"h.s.0": t + 20},
                    "time": t - 35,
                    "time_range": 55,
                },
            ],
        )
    monkeypatch.setattr(parts, "PART_CHUNKS", 4)
    window = Window(t0, t0 + 100 * 60)
    for fmt in ("json", "jsonl", "text", "irc"):
        for filters in (Filters(), Filters.of([], ["rare"]), Filters.of([], ["nobody"])):
            serial, parallel = io.BytesIO(), io.BytesIO()
            n1 = shell.export(str(tmp_path), "chan", window, fmt, serial, filters=filters, jobs=1)
            n2 = shell.export(str(tmp_path), "chan", window, fmt, parallel, filters=filters, jobs=2)
            assert (n1, parallel.getvalue()) == (n2, serial.getvalue()), (fmt, filters)


@settings(max_examples=examples(0.1))
@given(st.lists(archive_records(), min_size=1, max_size=6), st.sampled_from(["json", "text", "irc"]))
def test_any_archive_exports_or_fails_with_our_error(records: list[dict[str, Any]], fmt: str) -> None:
    """The fuzz invariant at the export's edge: any schema-valid records (huge ints, odd floats, any
    text) either export or raise ExportError / replay's InputError, never anything else."""
    from export.window import ExportError
    from formats.errors import ArchiverError

    with tempfile.TemporaryDirectory() as root:
        for r in records:
            try:
                minute = batch_time_of(r["time"])
            except (OverflowError, ValueError):
                continue
            if 0 <= minute < 2**33:  # a name the store can write (years 1970 to 2242)
                write_batch(root, "chan", minute, [r])
        Path(root, "chan", "chat").mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ExportError, ArchiverError):
            write_export(window_records(root, "chan", Window(1_700_000_000, 1_700_000_600)), fmt, io.BytesIO())


def test_a_context_minute_gives_a_chunk_only_what_can_reach_it(tmp_path: Path) -> None:
    """One-minute chunks: bob's PART in the minute after a chunk's core (a content the core does not
    have) is left out of that chunk's merge, alice's JOIN there (the core has her JOIN) is kept and
    folds with it; the window's records are upstream's rule either way."""
    t0 = 1_700_000_040

    def join(command: str, user: str, at: float, receiver: str) -> dict[str, Any]:
        return {
            "command": command,
            "params": ["#chan"],
            "sender": user,
            "user": user,
            "host": f"{user}.tmi.twitch.tv",
            "tags": None,
            "receivers": {receiver: at + 40},
            "time": at,
            "time_range": 30,
        }

    core = [join("JOIN", "alice", t0 + 50, "h.a.0")]
    after = [join("JOIN", "alice", t0 + 61, "h.b.0"), join("PART", "bob", t0 + 70, "h.a.0")]
    write_batch(str(tmp_path), "chan", t0, core)
    write_batch(str(tmp_path), "chan", t0 + 60, after)
    chunk = next(c for c in plan_chunks(Window(t0, t0 + 120), 1) if c.emit_to == t0 + 60)  # core: up to t0
    around = [(stream._Side(after), set(), [])]
    assert [r["user"] for r in stream._reaching(around, [stream._Side(core)], chunk)] == ["alice"]
    got = list(window_records(str(tmp_path), "chan", Window(t0, t0 + 120), chunk_minutes=1))
    expected = upstream_rule(str(tmp_path), "chan", t0, t0 + 120)
    assert [canonical_json(r) for r in got] == [canonical_json(r) for r in expected]
    assert [(r["user"], r["time"], sorted(r["receivers"])) for r in got] == [
        ("alice", t0 + 61, ["h.a.0", "h.b.0"]),  # one JOIN, folded across the minutes: [61, 80]
        ("bob", t0 + 70, ["h.a.0"]),
    ]


@st.composite
def canonical_rows(draw: Any) -> list[tuple[Any, ...]]:
    """A chunk's rows in canonical order, many of them sharing a key: lone rows (time, 0, line, id)
    and view rows (time, range, line, place, record), with or without an id."""
    rows: list[tuple[Any, ...]] = []
    for n in range(draw(st.integers(0, 30))):
        time = draw(st.sampled_from([1, 1.0, 2, 2.5, 3]))
        kind = draw(st.sampled_from(["lone", "with id", "without"]))
        line = b"%d" % n
        if kind == "lone":
            rows.append((time, 0, line, f"m{n}"))
        else:
            tags = {"id": f"m{n}"} if kind == "with id" else None
            rows.append((time, draw(st.sampled_from([0, 0.0, 5])), line, n, {"tags": tags}))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2]))


@given(canonical_rows())
def test_upstream_ties_lists_the_rows_with_an_id_first_at_equal_keys(rows: list[tuple[Any, ...]]) -> None:
    """Upstream's order (ARCHIVE_FORMAT.md section 6): a stable sort by (time, time_range) of its
    merge's output, which lists records with an id first; each class in canonical order."""
    expected = sorted(rows, key=lambda r: (r[0], r[1], len(r) == 5 and r[4]["tags"] is None))
    assert stream.upstream_ties(rows) == expected

"""Export's line path (export.stream.iter_chunk_rows with export.scan): the lone messages of a chunk
pass through as their stored lines, never decoded. Held to the path every record takes when it is
decoded (today's reference: `iter_chunks` with the view given, rendered by `write_export`), byte for
byte and error for error, over random archives: merged and unmerged files, duplicate deliveries, id
conflicts, ranged and id-less records, odd numbers (-0.0, 0.0, huge ints, 1e16), files that are not
canonical, damaged files; every format, filters, windows cut at any minute; with the pure reference
scanner and with the compiled twin."""

from __future__ import annotations

import io
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from profiles import examples
from typer.testing import CliRunner

from chat_archiver.cli import app
from export import scan, stream
from export.shell import export
from export.stream import iter_chunks, passing_through, write_export
from export.window import Filters, Window, plan_chunks
from formats.canonical import batch_time_of, canonical_bytes
from formats.errors import ArchiverError, InputError
from formats.store import write_batch_bytes
from merge.view import fold_for_reading
from tests.archives import write_batch
from tests.compiled import Core
from tests.strategies import MERGE_MINUTE0, archive_records, export_windows, merge_archives, records_in_minute

ODD = [-0.0, 0.0, 2**60, 10**15, 10**15 - 1, 1e16, 5, 1.5, -3]


def twin_scanner(core: Core) -> Any:
    """export's batch scanner on this side of the `core` fixture: the reference or the compiled twin."""
    return core.twin(scan.scan_batch_py, "export_scan_batch")


@contextmanager
def scanner(fn: Any) -> Iterator[None]:
    saved = stream.scan_batch
    stream.scan_batch = fn
    try:
        yield
    finally:
        stream.scan_batch = saved


def reference(root: str, window: Window, fmt: str, filters: Filters, keep_going: bool) -> object:
    """Every record decoded and merged, without the line path (a view given turns the scan off)."""
    out = io.BytesIO()
    problems: list[InputError] | None = [] if keep_going else None
    try:
        records = iter_chunks(
            root,
            "chan",
            window,
            plan_chunks(window, stream.CHUNK_MINUTES),
            filters,
            view=passing_through(fold_for_reading),
            problems=problems,
        )
        n = write_export(records, fmt, out)
    except ArchiverError as e:
        return type(e).__name__, str(e)
    return n, out.getvalue(), sorted({str(p) for p in problems or []})


def through_lines(root: str, window: Window, fmt: str, filters: Filters, keep_going: bool) -> object:
    out = io.BytesIO()
    problems: list[InputError] | None = [] if keep_going else None
    try:
        n = export(root, "chan", window, fmt, out, filters=filters, problems=problems)
    except ArchiverError as e:
        return type(e).__name__, str(e)
    return n, out.getvalue(), sorted({str(p) for p in problems or []})


@st.composite
def odd_numbers(draw: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Some records with a number the merge does not keep as it is, or the scanner does not read."""
    out = []
    for original in records:
        r = dict(original, receivers=dict(original["receivers"]))
        what = draw(st.sampled_from(["none", "none", "receiver", "range", "time"]))
        if what == "receiver":
            r["receivers"][next(iter(r["receivers"]))] = draw(st.sampled_from(ODD))
        elif what == "range":
            r["time_range"] = draw(st.sampled_from([0.0, -0.0, 0, 2**60, 1e16, -1]))
        elif what == "time":
            r["time"] = int(r["time"]) if draw(st.booleans()) else r["time"] + 0.5
        out.append(r)
    return out


def _respelled(data: bytes) -> bytes:
    """The same records, not canonical (a space after the first comma): the scanner refuses the file."""
    return data.replace(b",", b", ", 1)


@st.composite
def archives(draw: Any) -> list[tuple[int, bytes]]:
    """Batch files (minute, bytes) of several archives of one channel."""
    groups = draw(merge_archives())
    groups.append(draw(records_in_minute(MERGE_MINUTE0 + 60)))
    groups.append(draw(odd_numbers(draw(records_in_minute(MERGE_MINUTE0)))))
    groups.append(draw(st.lists(archive_records(), max_size=3)))
    files = []
    for records in groups:
        by_minute: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            try:
                minute = batch_time_of(r["time"])
            except (OverflowError, ValueError):
                continue
            if MERGE_MINUTE0 - 600 <= minute <= MERGE_MINUTE0 + 600:
                by_minute[minute].append(r)
        for minute, group in by_minute.items():
            lines = sorted(canonical_bytes(r) for r in group)
            data = b"\n".join(lines) + b"\n"
            how = draw(st.sampled_from(["as is"] * 6 + ["respelled", "torn", "bad line"]))
            if how == "respelled":
                data = _respelled(data)
            elif how == "torn":
                data = data[:-1]
            elif how == "bad line":
                data += b'{"broken\n'
            files.append((minute, data))
    return files


# two problems in one window, met in an order that depends on the chunks: a receive time the
# merge refuses at 22:14, a torn file at 22:17 whose range reaches back into the window
_TWO_PROBLEMS = [
    (
        1_700_000_040,
        b'{"command":"PRIVMSG","host":"alice.tmi.twitch.tv","params":["#chan","hi"],"receivers":{"host1.Ab3dE.0":'
        b'1700000040.001},"sender":"alice","tags":{"id":"m1","tmi-sent-ts":"1700000040000"},"time":1700000040.0,'
        b'"time_range":0,"user":"alice"}\n',
    ),
    (
        1_700_000_040,
        b'{"command":"PRIVMSG","host":null,"params":["#chan",""],"receivers":{"host1.Ab3dE.0":1152921504606846976,'
        b'"host2.Zz9xY.0":1700000040.000001},"sender":"a","tags":{"id":"m7","tmi-sent-ts":"1700000040000"},'
        b'"time":1700000040.0,"time_range":0,"user":null}\n',
    ),
    (
        1_700_000_220,
        b'{"command":"PRIVMSG","host":null,"params":[],"receivers":{"host1.00000.0":1700000000.0},"sender":null,'
        b'"tags":null,"time":1700000220.0,"time_range":1700000000.0,"user":null}',
    ),
]


@settings(max_examples=examples(0.5), deadline=None)
@example(files=_TWO_PROBLEMS, window=(1699999950, 1700000160), how=("json", Filters(), False, 1))
@given(
    archives(),
    export_windows,
    st.tuples(
        st.sampled_from(["json", "jsonl", "text", "irc"]),
        st.sampled_from([Filters(), Filters.of(["PRIVMSG"], []), Filters.of([], ["alice"])]),
        st.booleans(),
        st.sampled_from([1, 2, 10]),
    ),
)
def test_the_line_path_gives_the_reference_bytes(
    core: Core, files: list[tuple[int, bytes]], window: tuple[int, int], how: tuple[str, Filters, bool, int]
) -> None:
    fmt, filters, keep_going, chunk = how
    # the reference cuts the window into chunks of `chunk` minutes, the line path into export.shell's
    # (10): so this also holds that where the window is cut does not change what is exported. Not
    # without keep-going: the first problem stops the export, and with two in a window (a file torn,
    # another the merge refuses) which one is met first depends on the chunks (seen: chunks of one
    # minute merged 22:14 before reading 22:17 as context, chunks of ten read 22:17 first)
    saved = stream.CHUNK_MINUTES
    stream.CHUNK_MINUTES = chunk if keep_going else saved
    try:
        with tempfile.TemporaryDirectory() as root:
            for minute, data in files:
                write_batch_bytes(root, "chan", minute, data)
            Path(root, "chan", "chat").mkdir(parents=True, exist_ok=True)
            w = Window(*window)
            expected = reference(root, w, fmt, filters, keep_going)
            with scanner(None):
                assert through_lines(root, w, fmt, filters, keep_going) == expected
            with scanner(twin_scanner(core)):
                assert through_lines(root, w, fmt, filters, keep_going) == expected
    finally:
        stream.CHUNK_MINUTES = saved


def test_a_negative_range_at_a_chunk_edge_is_exported_however_the_window_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id-less record whose range is -1 (it ends before it starts), starting exactly at the edge
    between two one-minute chunks: the later chunk shows it, as one chunk over the whole window does."""
    t0 = 1_700_000_040
    join = {
        "command": "JOIN",
        "params": ["#chan", ""],
        "sender": "a",
        "user": None,
        "host": None,
        "tags": None,
        "receivers": {"h.s.0": t0 + 60.000001},
        "time": t0 + 60.0,
        "time_range": -1,
    }
    write_batch(str(tmp_path), "chan", t0, [_message(t0 + 1.5, "m1")])
    write_batch(str(tmp_path), "chan", t0 + 60, [join])
    w = Window(t0, t0 + 120)
    monkeypatch.setattr(stream, "CHUNK_MINUTES", 1)
    expected = reference(str(tmp_path), w, "jsonl", Filters(), False)
    assert expected == (2, canonical_bytes(_message(t0 + 1.5, "m1")) + b"\n" + canonical_bytes(join) + b"\n", [])
    assert through_lines(str(tmp_path), w, "jsonl", Filters(), False) == expected


def _message(t: float, mid: str, who: str = "a", **extra: Any) -> dict[str, Any]:
    record = {
        "command": "PRIVMSG",
        "params": ["#chan", f"hi {mid}"],
        "sender": who,
        "user": who,
        "host": None,
        "tags": {"id": mid},
        "receivers": {"h.s.0": t + 0.25},
        "time": t,
        "time_range": 0,
    }
    record.update(extra)
    return record


def test_lone_lines_are_never_decoded_and_the_rest_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core: Core
) -> None:
    """In json, a lone message is printed from its stored line: the decoder sees only the others (a
    message delivered twice, a JOIN, a message with a 0.0 receive time)."""
    t0 = 1_700_000_040
    write_batch(
        str(tmp_path),
        "chan",
        t0,
        [
            _message(t0 + 1.5, "lone"),
            _message(t0 + 2.5, "twice"),
            {
                "command": "JOIN",
                "params": ["#chan"],
                "sender": "j",
                "user": "j",
                "host": None,
                "tags": None,
                "receivers": {"h.s.0": t0 + 20},
                "time": t0 + 3,
                "time_range": 30,
            },
            _message(t0 + 4.5, "zero", receivers={"h.s.0": 0.0}),
        ],
    )
    write_batch(str(tmp_path), "chan", t0, [_message(t0 + 2.5, "twice", receivers={"h.s.1": t0 + 2.75})])
    decoded: list[bytes] = []
    real = stream.decode_line
    monkeypatch.setattr(stream, "decode_line", lambda line: decoded.append(line) or real(line))
    monkeypatch.setattr(stream, "scan_batch", core.twin(scan.scan_batch_py, "export_scan_batch"))
    # the files one by one, as without the compiled merge (which merges the minute's two files first,
    # and then decodes nothing: tests/test_export_unmerged.py)
    monkeypatch.setattr(stream, "merged_minute", lambda _minute, _datas: None)
    out = io.BytesIO()
    assert export(str(tmp_path), "chan", Window(t0, t0 + 60), "json", out) == 4
    assert sorted(decoded) == sorted(
        [  # both copies of the message delivered twice, nothing else
            canonical_bytes(_message(t0 + 2.5, "twice")),
            canonical_bytes(_message(t0 + 2.5, "twice", receivers={"h.s.1": t0 + 2.75})),
        ]
    )
    assert b'"lone"' in out.getvalue() and b'"h.s.0":1700000042.75,"h.s.1":1700000042.75' in out.getvalue()


def test_the_cli_exports_the_same_bytes_on_either_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core: Core
) -> None:
    """As a user runs it: the same stdout with the scanner and without it, for each format."""
    t0 = 1_700_000_040
    for m in range(15):
        write_batch(
            str(tmp_path),
            "chan",
            t0 + 60 * m,
            [
                _message(t0 + 60 * m + 1.5, f"m{m}"),
                _message(t0 + 60 * m + 1.5, f"n{m}", who="b"),
                {
                    "command": "PART",
                    "params": ["#chan"],
                    "sender": "j",
                    "user": "j",
                    "host": None,
                    "tags": None,
                    "receivers": {"h.s.0": t0 + 60 * m + 40},
                    "time": t0 + 60 * m + 10,
                    "time_range": 30,
                },
            ],
        )
    runner = CliRunner()
    for fmt in ("json", "jsonl", "text"):
        args = ["export", str(tmp_path), "chan", "--since", str(t0), "--until", str(t0 + 900), "--format", fmt]
        outputs = []
        for fn in [None, twin_scanner(core)]:
            monkeypatch.setattr(stream, "scan_batch", fn)
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
        assert len(set(outputs)) == 1 and outputs[0].count("hi ") == 30, fmt


def test_a_merge_error_names_the_record_the_reference_names(tmp_path: Path, core: Core) -> None:
    """A chunk whose merge fails (a receive time beyond 2**53) is done again the reference way, so
    the error is the one the decoded path gives, lone messages or not."""
    t0 = 1_700_000_040
    write_batch(
        str(tmp_path),
        "chan",
        t0,
        [_message(t0 + 1.5, "lone"), _message(t0 + 2.5, "b"), _message(t0 + 3.5, "huge", receivers={"h.s.0": 2**60})],
    )
    w = Window(t0, t0 + 60)
    expected = reference(str(tmp_path), w, "json", Filters(), False)
    assert expected[0] == "ExportError" and "2**53" in str(expected[1])
    with scanner(twin_scanner(core)):
        assert through_lines(str(tmp_path), w, "json", Filters(), False) == expected


def test_a_lone_surrogate_is_decoded_as_the_reader_decodes_it(tmp_path: Path, core: Core) -> None:
    """orjson refuses a lone surrogate: such lines (never lone candidates) go through the reader."""
    t0 = 1_700_000_040
    write_batch(
        str(tmp_path),
        "chan",
        t0,
        [_message(t0 + 1.5, "a", params=["#chan", "half \ud83c"]), _message(t0 + 2.5, "b", params=["#chan", "fine"])],
    )
    w = Window(t0, t0 + 60)
    for fmt in ("json", "text"):
        expected = reference(str(tmp_path), w, fmt, Filters(), False)
        assert isinstance(expected, tuple) and expected[0] == 2
        with scanner(twin_scanner(core)):
            assert through_lines(str(tmp_path), w, fmt, Filters(), False) == expected


def test_a_refused_number_is_named_the_same_however_the_window_is_cut(tmp_path: Path) -> None:
    """Two records the merge refuses in one minute: an id-less ROOMSTATE that an earlier chunk reads
    as context (its receive time), and a message with an id that only the chunk whose core holds the
    minute reads (its range). Cut into one-minute chunks, the first failed chunk met the ROOMSTATE
    first; cut into ten, the message. Either way the error names the first in the file: the message."""
    t0 = 1_700_000_040
    message = {**_message(t0 + 0.5, "m"), "time_range": 2**60}
    roomstate = {
        "command": "ROOMSTATE",
        "params": ["#chan"],
        "sender": "tmi.twitch.tv",
        "user": None,
        "host": None,
        "tags": None,
        "receivers": {"h.s.0": 2**60, "h.s.1": t0 + 0.75},
        "time": t0 + 0.5,
        "time_range": 10,
    }
    write_batch_bytes(str(tmp_path), "chan", t0, canonical_bytes(message) + b"\n" + canonical_bytes(roomstate) + b"\n")
    w = Window(t0 - 90, t0 + 69)
    named = set()
    saved = stream.CHUNK_MINUTES
    try:
        for chunk in (1, 10):
            stream.CHUNK_MINUTES = chunk
            named.add(reference(str(tmp_path), w, "json", Filters(), False))
    finally:
        stream.CHUNK_MINUTES = saved
    assert named == {
        ("ExportError", "cannot merge the files of 2023-11-14T22: time_range is an int beyond 2**53: " + str(2**60))
    }


@settings(max_examples=examples(0.5), deadline=None)
@given(archives(), export_windows, st.sampled_from([1, 2]), st.booleans())
def test_serves_short_chunks_give_the_rows_of_exports_chunks(
    core: Core, files: list[tuple[int, bytes]], window: tuple[int, int], chunk: int, keep_going: bool
) -> None:
    """serve reads a window in one-minute chunks, each merging its core minute with the few context
    records that can reach it (`stream._reaching`); export in ten-minute chunks: the same lines in
    the same order, the same damaged files, the same error."""
    with tempfile.TemporaryDirectory() as root:
        for minute, data in files:
            write_batch_bytes(root, "chan", minute, data)
        Path(root, "chan", "chat").mkdir(parents=True, exist_ok=True)
        w = Window(*window)

        def lines(minutes: int) -> object:
            problems: list[InputError] | None = [] if keep_going else None
            chunks = plan_chunks(w, minutes)
            try:
                got = [
                    row[2]
                    for rows in stream.iter_chunk_rows(root, "chan", w, chunks, problems=problems, lines=True)
                    for row in rows
                ]
            except ArchiverError as e:
                return type(e).__name__, str(e)
            return got, sorted({str(p) for p in problems or []})

        with scanner(twin_scanner(core)):
            assert lines(chunk) == lines(10)


def test_a_one_minute_chunk_folds_a_core_record_with_one_read_ahead(tmp_path: Path) -> None:
    """A JOIN whose range reaches into the next minute folds with an equal JOIN stored there (the
    reading fold joins equal id-less records whose ranges meet): a one-minute chunk sees that one in
    its context, so it exports one JOIN, as a ten-minute chunk does."""
    m = MERGE_MINUTE0
    join = {"command": "JOIN", "host": "a.tmi", "params": ["#chan"], "sender": "a", "tags": None, "user": "a"}
    first = {**join, "receivers": {"h1.A.0": m + 52.0}, "time": m + 50, "time_range": 55}
    second = {**join, "receivers": {"h2.B.0": m + 70.5}, "time": m + 70, "time_range": 0}
    write_batch_bytes(str(tmp_path), "chan", m, canonical_bytes(first) + b"\n")
    write_batch_bytes(str(tmp_path), "chan", m + 60, canonical_bytes(second) + b"\n")
    w = Window(m - 120, m + 240)
    got = {}
    for minutes in (1, 10):
        chunks = plan_chunks(w, minutes)
        got[minutes] = [
            r[2] for rows in stream.iter_chunk_rows(str(tmp_path), "chan", w, chunks, lines=True) for r in rows
        ]
    assert got[1] == got[10]
    assert len(got[1]) == 1 and b'"h1.A.0"' in got[1][0] and b'"h2.B.0"' in got[1][0]

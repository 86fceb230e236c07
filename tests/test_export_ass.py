"""`export --format ass`: escaping (no chat text can become markup), timing and stacking against a
simple model of what should be on screen, removals, and a real reader: ffmpeg parses the file and
burns it into a blank video, lit exactly when chat is on screen."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from profiles import examples
from typer.testing import CliRunner

from chat_archiver.cli import app
from export.ass import (
    LINE_CHARS,
    MAX_LINES,
    MIN_FRAME,
    WORD_JOINER,
    AssRenderer,
    ass_color,
    clock,
    escape,
    render_lines,
    stable_color,
    wrap,
)
from export.render import Playback, Renderer
from formats.canonical import batch_time_of, canonical_bytes
from tests.archives import write_batch
from tests.reference.ass_box import AssRendererPy
from tests.strategies import PLAY_START, archive_records, chat_sessions, markup_text, play_message, play_removal

FIXTURE_ARCHIVE = str(Path(__file__).parent.parent / "fixtures" / "export" / "archive")
OUR_OVERRIDE = re.compile(r"\{\\c&H[0-9A-F]{6}&\\b[01]\\i[01]\\s[01]\}")


class Markup(Exception):
    pass


def libass_text(s: str) -> str:
    """What libass shows for dialogue text `s` (ass_render.c: `{` opens an override block; `\\N`,
    `\\n` and `\\h` are breaks and hard spaces; `\\{` `\\}` are braces); Markup if any of those."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "{":
            raise Markup(f"override at {i}: {s!r}")
        if c == "\\" and i + 1 < len(s):
            if s[i + 1] in "Nnh":
                raise Markup(f"break at {i}: {s!r}")
            if s[i + 1] in "{}":
                out.append(s[i + 1])
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ("{\\i1}x", "\\{\\\u2060i1\\}x"),
        ("a\\Nb", "a\\\u2060Nb"),
        ("line\nbreak\r", "line break "),
        ("\\h\\n", "\\\u2060h\\\u2060n"),
        ("}", "\\}"),
    ],
)
def test_escape_examples(text: str, escaped: str) -> None:
    assert escape(text) == escaped


@given(markup_text)
@example("\\{")
@example("\\\\N")
def test_escaped_text_is_never_markup_and_reads_back(text: str) -> None:
    shown = libass_text(escape(text))
    assert shown.replace("\\" + WORD_JOINER, "\\") == re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text)


@given(markup_text, markup_text, st.booleans())
@example("", "{" * 32 + "\\N{\\i1}{\\i1}{\\i1}{\\i1} ", False)  # wrapped at its last space: no empty line
def test_message_lines_hold_only_our_overrides(name: str, text: str, removed: bool) -> None:
    lines = render_lines([(name, "#FF0000", True, False), (": " + text, "#FFFFFF", False, False)], removed)
    for line in lines:
        assert "\n" not in line
        libass_text(OUR_OVERRIDE.sub("", line))  # raises on anything else
        assert (r"\s1" in line) == removed


@given(st.text(st.sampled_from("ab "), max_size=300), st.integers(5, 60))
def test_wrap_keeps_every_character_in_lines_of_the_width(text: str, width: int) -> None:
    cuts = wrap(text, width)
    assert all(end - start <= width for start, end in cuts)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(text)
    for (_, end), (start, _) in pairwise(cuts):
        assert start in (end, end + 1) and (start == end or text[end] == " ")  # only cut spaces dropped


def test_colours_and_clock() -> None:
    assert ass_color("#1E90FF") == "&HFF901E&"
    assert stable_color("alice") == stable_color("alice")
    assert len({stable_color(f"user{i}") for i in range(200)}) > 5
    assert clock(0) == "0:00:00.00" and clock(366_125) == "1:01:01.25"


# --- frames against a model -------------------------------------------------------------------------

Frame = tuple[int, int, list[str]]  # start cs, end cs, plain lines (struck lines end with " [x]")


def cs_of(text: str) -> int:
    h, m, s = text.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(s)) * 100)


def frames(ass: str) -> list[Frame]:
    out = []
    for line in ass.splitlines():
        if line.startswith("Dialogue: "):
            fields = line[len("Dialogue: ") :].split(",", 9)
            shown = []
            for part in fields[9].split("\\N"):
                struck = r"\s1" in part
                shown.append(libass_text(OUR_OVERRIDE.sub("", part)) + (" [x]" if struck else ""))
            out.append((cs_of(fields[1]), cs_of(fields[2]), shown))
    return out


def render(records: list[dict[str, Any]], hold: float = 10.0) -> str:
    renderer = AssRenderer(PLAY_START, hold, "t")
    return renderer.begin() + "".join(renderer.add(r) for r in records) + renderer.end()


def model(records: list[dict[str, Any]], hold_cs: int) -> dict[str, tuple[int, int, float]]:
    """Per message id: appears (cs, rounded up), expires, removed (cs, or inf)."""

    def cs(r: dict[str, Any]) -> int:
        return math.ceil(round((r["time"] - PLAY_START) * 100, 6))

    out: dict[str, tuple[int, int, float]] = {}
    logins: dict[str, str] = {}
    for r in records:
        if r["command"] == "PRIVMSG":
            out[r["tags"]["id"]] = (cs(r), cs(r) + hold_cs, math.inf)
            logins[r["tags"]["id"]] = r["user"]
        else:
            target = r["params"][1] if len(r["params"]) > 1 else None
            for mid, (a, e, gone) in out.items():
                hit = (r["command"] == "CLEARMSG" and r["tags"]["target-msg-id"] == mid) or (
                    r["command"] == "CLEARCHAT" and target in (None, logins[mid])
                )
                if hit and gone == math.inf:
                    out[mid] = (a, e, cs(r))
    return out


def shown_at(fs: list[Frame], x: int) -> list[str]:
    for start, end, lines in fs:
        if start <= x < end:
            return lines
    return []


def ids_in(lines: list[str]) -> list[tuple[str, bool]]:
    return [(m.group(1), line.endswith(" [x]")) for line in lines if (m := re.search(r"\bm(\d+)\b", line))]


@settings(max_examples=examples(0.2))
@given(chat_sessions(), st.sampled_from([1.0, 3.0, 10.0]))
def test_frames_follow_the_model_within_one_frame(records: list[dict[str, Any]], hold: float) -> None:
    """At any moment: a message is up from its time (within MIN_FRAME) for `hold` seconds, newest
    at the bottom; struck through from its removal (within MIN_FRAME), never before; frames do not
    overlap. (At most 12 one-line messages: the box never overflows.)"""
    fs = frames(render(records, hold))
    for (_, end, _), (start, _, _) in pairwise(fs):
        assert end <= start
    assert all(start < end and 0 < len(lines) <= MAX_LINES for start, end, lines in fs)
    hold_cs = round(hold * 100)
    truth = model(records, hold_cs)
    horizon = max(e for _, e, _ in truth.values()) + MIN_FRAME + 10
    for x in range(horizon):
        shown = ids_in(shown_at(fs, x))
        order = [int(i) for i, _ in shown]
        assert order == sorted(order), (x, shown)  # oldest first: newest at the bottom
        here = dict(shown)
        for mid, (appear, expire, removed) in truth.items():
            n = mid[1:]
            if appear + MIN_FRAME <= x < expire:
                assert n in here, (x, mid, shown)
            if x < appear or x >= expire + MIN_FRAME:
                assert n not in here, (x, mid, shown)
            if n in here and x >= removed + MIN_FRAME:
                assert here[n], (x, mid, "should be struck")
            if n in here and x < removed:
                assert not here[n], (x, mid, "struck too early")


@settings(max_examples=examples(0.1))
@given(chat_sessions(spaced=True))
def test_quiet_chat_is_exactly_on_time(records: list[dict[str, Any]]) -> None:
    """Records at least 0.3 s apart (more than a frame): every message appears at its time rounded
    up to the centisecond and is struck exactly at its removal."""
    fs = frames(render(records, 100.0))
    truth = model(records, 10_000)
    starts = {start for start, _, _ in fs}
    for appear, _, removed in truth.values():
        assert appear in starts or appear == 0
        assert removed == math.inf or removed in starts or removed >= fs[-1][1]
    for x in sorted({s for s, _, _ in fs}):
        assert {n for n, _ in ids_in(shown_at(fs, x))} == {mid[1:] for mid, (a, e, _) in truth.items() if a <= x < e}


def test_a_busy_channel_stacks_newest_at_the_bottom_and_updates_a_few_times_a_second() -> None:
    records = [play_message(i, PLAY_START + i / 100, "alice", f"m{i}") for i in range(1000)]  # 100/s
    fs = frames(render(records))
    assert len(fs) <= 10 * 100 / MIN_FRAME + 1 + 10 * 100 / MIN_FRAME  # 10 s of chat, 10 s of hold
    for _, _, lines in fs:
        assert len(lines) <= MAX_LINES
        order = [int(i) for i, _ in ids_in(lines)]
        assert order == sorted(order)
    assert [int(i) for i, _ in ids_in(fs[-1][2])][-1] == 999


def test_long_messages_wrap_and_removed_ones_stay_struck() -> None:
    long = "word " * 40
    records = [
        play_message(0, PLAY_START + 1, "alice", long.strip()),
        play_message(1, PLAY_START + 2, "bob", "\x01ACTION waves {\\b1}\x01"),
        play_removal(PLAY_START + 3, "CLEARMSG", "m0", "alice"),
        play_removal(PLAY_START + 4, "CLEARCHAT", "bob"),
    ]
    ass = render(records)
    fs = frames(ass)
    first = shown_at(fs, 150)
    assert len(first) == math.ceil(len("Alice: " + long.strip()) / LINE_CHARS) > 2
    assert all(len(line) <= LINE_CHARS for line in first)
    assert shown_at(fs, 250)[-1] == "Bob waves {\\\u2060b1}"  # the backslash stays text
    assert r"\i1" in ass  # /me in italics
    assert all(line.endswith(" [x]") for line in shown_at(fs, 300)[:-1])
    assert not shown_at(fs, 300)[-1].endswith(" [x]")
    assert all(line.endswith(" [x]") for line in shown_at(fs, 400))
    # removed messages stay up, struck, until their hold ends: Alice's at 11 s, Bob's at 12 s
    assert len(shown_at(fs, 1099)) == len(first) + 1
    assert shown_at(fs, 1100) == ["Bob waves {\\\u2060b1} [x]"]
    assert shown_at(fs, 1200) == []


# --- the command and a real reader ----------------------------------------------------------------


def test_cli_writes_ass_timed_from_start_and_takes_hold(tmp_path: Path) -> None:
    base = [
        "export",
        FIXTURE_ARCHIVE,
        "desertbus",
        "--since",
        "1700000010",
        "--until",
        "2023-11-14T22:16:00Z",
        "--format",
        "ass",
    ]
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[Script Info]\n")
    fs = frames(result.stdout)
    # the fixture's first message, SomeViewer at 22:13:32.345, is 2.345 s after the start
    assert fs[0][0] == 235 and fs[0][2] == ["SomeViewer: h\u00e9llo Kappa \U0001f389"]
    assert fs[0][1] == 235 + 1000
    held = frames(CliRunner().invoke(app, [*base, "--hold", "2.5"]).stdout)
    assert held[0][1] == 235 + 250
    bad = CliRunner().invoke(app, [*base, "--hold", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (.ci/run installs it)"
)


def ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *args], capture_output=True, timeout=60, check=False
    )


@pytest.mark.integration
@needs_ffmpeg
def test_ffmpeg_reads_every_event_and_burns_the_fixture_window(tmp_path: Path) -> None:
    out = tmp_path / "chat.ass"
    result = CliRunner().invoke(
        app,
        [
            "export",
            FIXTURE_ARCHIVE,
            "desertbus",
            "--since",
            "1700000010",
            "--until",
            "2023-11-14T22:16:00Z",
            "--format",
            "ass",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    srt = ffmpeg("-i", str(out), "-f", "srt", "-")
    assert srt.returncode == 0 and srt.stderr == b"", srt.stderr
    ours = frames(out.read_text())
    theirs = re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)", srt.stdout.decode())
    assert [
        (
            round((int(h) * 3600 + int(m) * 60 + int(s)) * 100 + int(ms) / 10),
            round((int(h2) * 3600 + int(m2) * 60 + int(s2)) * 100 + int(ms2) / 10),
        )
        for h, m, s, ms, h2, m2, s2, ms2 in theirs
    ] == [(a, b) for a, b, _ in ours]
    burn = ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=320x180:d=4:r=5", "-vf", f"subtitles=filename={out}", "-f", "null", "-"
    )
    assert burn.returncode == 0 and burn.stderr == b"", burn.stderr


@pytest.mark.integration
@needs_ffmpeg
def test_burnt_video_is_lit_exactly_while_chat_is_up(tmp_path: Path) -> None:
    """libass draws the box exactly in the frames' spans: the blank video has text in the frames
    of [0.6, 1.9) and [2.1, 3.4) and none elsewhere; a removed message is still drawn."""
    root = tmp_path / "archive"
    write_batch(
        str(root),
        "chan",
        batch_time_of(PLAY_START),
        [
            play_message(0, PLAY_START + 0.6, "alice", "hello {\\i1}there\\N"),
            play_removal(PLAY_START + 1.0, "CLEARMSG", "m0", "alice"),
            play_message(1, PLAY_START + 2.1, "bob", "\x01ACTION waves\x01", color="#00FF00"),
        ],
    )
    out = tmp_path / "chat.ass"
    result = CliRunner().invoke(
        app,
        [
            "export",
            str(root),
            "chan",
            "--since",
            str(PLAY_START),
            "--until",
            str(PLAY_START + 60),
            "--format",
            "ass",
            "--hold",
            "1.3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    video = ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=320x180:d=4:r=4",
        "-vf",
        f"subtitles=filename={out}",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-",
    )
    assert video.returncode == 0 and video.stderr == b"", video.stderr
    size = 320 * 180
    lit = [sum(1 for b in video.stdout[i : i + size] if b > 60) > 20 for i in range(0, len(video.stdout), size)]
    expected = [0.6 <= k / 4 < 1.9 or 2.1 <= k / 4 < 3.4 for k in range(16)]
    assert lit == expected, (lit, expected)


@settings(max_examples=examples(0.4))
@given(st.lists(archive_records(), max_size=8), st.floats(0.1, 30))
def test_any_records_in_any_order_render_in_both_playback_formats(records: list[dict[str, Any]], hold: float) -> None:
    """The fuzz invariant for the playback renderers: any schema-valid records (huge numbers, any
    text, out of order) render, and the ass output's every dialogue line holds only our markup."""
    for fmt in ("ass", "html"):
        renderer = Renderer(fmt, Playback(PLAY_START, PLAY_START + 60, hold))
        out = renderer.begin() + "".join(renderer.add(r) for r in records) + renderer.end()
        if fmt == "ass":
            for line in out.splitlines():
                if line.startswith("Dialogue: "):
                    for part in line.split(",", 9)[9].split("\\N"):
                        libass_text(OUR_OVERRIDE.sub("", part))


def test_playback_formats_over_worker_parts_equal_the_serial_export(tmp_path: Path, monkeypatch: Any) -> None:
    """With --jobs, workers merge the parts and one renderer sees every record: the same bytes as
    serially, though a removal reaches back across a part's seam."""
    from export import parts, shell
    from export.window import Window

    monkeypatch.setattr(parts, "PART_CHUNKS", 2)  # parts of 4 minutes
    minute0 = batch_time_of(PLAY_START)
    for m in range(20):
        minute = minute0 + 60 * m
        batch = [play_message(m, minute + 59, "alice", f"m{m} " + "x" * m)]
        if m % 5 == 4:
            batch.insert(0, play_removal(minute + 1, "CLEARMSG", f"m{m - 1}", "alice"))
        write_batch(str(tmp_path), "chan", minute, batch)
    window = Window(minute0, minute0 + 20 * 60)
    for fmt in ("ass", "html"):
        serial, parallel = io.BytesIO(), io.BytesIO()
        n1 = shell.export(str(tmp_path), "chan", window, fmt, serial, jobs=1)
        n2 = shell.export(str(tmp_path), "chan", window, fmt, parallel, jobs=2)
        assert (n1, parallel.getvalue()) == (n2, serial.getvalue()), fmt
        assert n1 == 24
        if fmt == "ass":  # m3 (minute 3, part 1) is struck by the CLEARMSG of minute 4 (part 2)
            fs = frames(serial.getvalue().decode())
            assert shown_at(fs, 24_000) == ["Alice: m3 xxx"] and shown_at(fs, 24_200) == ["Alice: m3 xxx [x]"]


@pytest.mark.parametrize("fmt", ["ass", "html"])
def test_a_damaged_file_is_named_and_skipped_and_the_rest_is_played(tmp_path: Path, fmt: str) -> None:
    minute0 = batch_time_of(PLAY_START)
    write_batch(str(tmp_path), "chan", minute0, [play_message(0, minute0 + 5, "alice", "kept")])
    path, _ = write_batch(str(tmp_path), "chan", minute0 + 60, [play_message(1, minute0 + 65, "bob", "lost")])
    Path(path).write_bytes(b'{"broken\n')
    result = CliRunner().invoke(
        app, ["export", str(tmp_path), "chan", "--since", str(minute0), "--until", str(minute0 + 120), "--format", fmt]
    )
    assert result.exit_code == 1, result.output
    assert path in result.stderr and "Traceback" not in result.output
    assert "kept" in result.stdout and "lost" not in result.stdout


def _busy_sessions() -> Any:
    """Chat sessions, some with many messages close together (the box overflows and messages go off
    its top before they are shown), some with long messages (several lines each)."""
    long_text = st.text(st.sampled_from("ab {}\\\u00e9 \U0001f389"), min_size=0, max_size=150)
    return st.tuples(chat_sessions(max_messages=40), st.lists(long_text, max_size=40)).map(
        lambda p: [
            {**r, "params": [r["params"][0], text]} if r["command"] == "PRIVMSG" and text else r
            for r, text in zip(p[0], p[1] + [""] * len(p[0]), strict=False)
        ]
    )


@settings(max_examples=examples(0.5))
@given(
    st.one_of(_busy_sessions(), st.lists(archive_records(), max_size=8)),
    st.sampled_from([0.3, 1.0, 10.0]),
    st.booleans(),
)
@example(records=[play_message(i, PLAY_START + i / 100, "alice", f"m{i}") for i in range(300)], hold=1.0, as_lines=True)
def test_the_box_is_the_references_whether_records_come_as_records_or_lines(
    records: list[dict[str, Any]], hold: float, as_lines: bool
) -> None:
    """AssRenderer (changes in queues, messages read lazily, records as canonical lines) writes what
    the reference (tests/reference/ass_box.py: one heap, every message measured at once) writes,
    for any records in any order."""
    reference = AssRendererPy(PLAY_START, hold, "t")
    expected = reference.begin() + "".join(reference.add(r) for r in records) + reference.end()
    renderer = AssRenderer(PLAY_START, hold, "t")
    if as_lines:
        body = "".join(renderer.add_stored(r["time"], canonical_bytes(r)) for r in records)
    else:
        body = "".join(renderer.add(r) for r in records)
    assert renderer.begin() + body + renderer.end() == expected
    # export's rows: stored lines, and records the export built (here every third)
    rows = [
        (r["time"], r["time_range"], canonical_bytes(r), i, r)
        if i % 3 == 0 and not as_lines
        else (r["time"], r["time_range"], canonical_bytes(r), i)
        for i, r in enumerate(records)
    ]
    renderer = AssRenderer(PLAY_START, hold, "t")
    assert (
        renderer.begin()
        + renderer.add_rows(rows[: len(rows) // 2])
        + renderer.add_rows(rows[len(rows) // 2 :])
        + renderer.end()
        == expected
    )


@settings(max_examples=examples(0.5))
@given(archive_records(), st.booleans(), st.sampled_from(["", ',"time":1', '"time":2,"time_range":3']))
def test_a_parts_line_gives_its_records_time(record: dict[str, Any], named_time: bool, text: str) -> None:
    """parts.line_time reads the record's own time from its canonical line, whatever a receiver, a
    tag or a string holds (what the playback renderers get from the worker parts)."""
    from export.parts import line_time

    if named_time:
        record = {**record, "receivers": {**record["receivers"], "time": 5}, "tags": {"time": text, "time_range": "1"}}
    record = {**record, "user": text or record["user"], "params": [text]}
    assert line_time(canonical_bytes(record)) == float(record["time"])

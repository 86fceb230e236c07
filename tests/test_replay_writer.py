"""Batch files are written on a thread while the replay goes on (formats.store.BatchWriter), with
the guarantees of writing them one by one: a file is absent or complete under its name, all are on
disk when the replay returns, and a failure (a full disk) stops the run with one message naming the
file, after which a second run finishes the archive."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from formats.canonical import parse_batch
from formats.errors import InputError
from formats.rawcodec import Decoder
from formats.rawfile import find_raw_files
from formats.store import BatchWriter

# the pure and the compiled core run these differently: CI's pure pass runs them (-m core)
pytestmark = pytest.mark.core

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "chat_archiver.cli"]
LINE = (
    b'{"command":"PRIVMSG","host":null,"params":["#c","hi"],"receivers":{"a.B1.0":1.5},"sender":null,'
    b'"tags":null,"time":1.0,"time_range":0,"user":null}\n'
)


def test_every_batch_put_is_on_disk_when_the_writer_closes(tmp_path: Path) -> None:
    with BatchWriter(str(tmp_path), depth=2) as writer:
        for minute in range(20):
            writer.put("chan", 1_700_000_040 + 60 * minute, LINE)
        writer.put("chan", 1_700_000_040, LINE)  # the same bytes again: kept, not written twice
    assert (writer.written, writer.existing) == (20, 1)
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 20 and all(p.read_bytes() == LINE for p in files)


def test_the_first_error_stops_the_writing_and_is_raised_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "root").write_text("a file where the archive's root should be")
    writer = BatchWriter(str(tmp_path / "root"))
    writer.put("chan", 1_700_000_040, LINE)
    with pytest.raises(OSError) as e:  # raised by a later put or by close, whichever comes first
        for minute in range(1, 50):
            writer.put("chan", 1_700_000_040 + 60 * minute, LINE)
        writer.close()
    assert e.value.errno in (errno.ENOTDIR, errno.EEXIST)
    assert str(tmp_path / "root") in str(e.value.filename)
    writer.close()  # closing again raises nothing more


def test_leaving_on_the_callers_error_keeps_that_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError), BatchWriter(str(tmp_path)) as writer:
        writer.put("chan", 1_700_000_040, LINE)
        raise KeyError("the caller's own")
    assert len(list(tmp_path.rglob("*.json"))) == 1  # what was put before is on disk


@pytest.mark.integration
def test_a_full_disk_stops_replay_with_one_message_and_a_rerun_finishes(tmp_path: Path) -> None:
    """A real write failure (the file-size limit of the process, as a full disk fails a write) on the
    third of four batch files: the replay stops with one line naming that file, no traceback, no
    temporary or torn file left; the same command without the limit then writes the rest."""
    from bench.gen import write_recording

    write_recording(str(tmp_path / "raw"), 3000, rate=20.0)
    out = tmp_path / "out"

    def limit() -> None:  # batch files of this recording: 3.5 kB, 0.5 MB, 0.8 MB, 0.6 MB
        resource.setrlimit(resource.RLIMIT_FSIZE, (700_000, 700_000))

    failed = subprocess.run(
        [*CLI, "replay", str(tmp_path / "raw"), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert "File too large" in failed.stderr and ".json" in failed.stderr and ".temp" not in failed.stderr
    left = [p for p in out.rglob("*") if p.is_file()]
    assert left and all(p.name.endswith(".json") for p in left)
    for p in left:
        parse_batch(p.read_bytes())  # complete, every one
    again = subprocess.run(
        [*CLI, "replay", str(tmp_path / "raw"), "-o", str(out), "--no-merge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert len(list(out.rglob("*.json"))) == 4
    assert find_raw_files([str(tmp_path / "raw")])  # the input is untouched


def test_next_block_is_next_event_in_bulk() -> None:
    data = b'{"kind":"tick","seq":1,"at":5,"conn":0}\nnot json\n{"kind":"tick","seq":2,"at":6,"conn":0}\ntorn'
    one, bulk = Decoder(), Decoder()
    for d in (one, bulk):
        d.receive_data(data[:50])
        d.receive_data(data[50:])
        d.receive_data(b"")
    assert bulk.next_block() == data[: data.rindex(b"\n") + 1] and bulk.line_number == 3
    with pytest.raises(InputError, match="torn"):
        bulk.next_block()
    assert bulk.line_number == 4 and bulk.next_block() == b""
    numbers = []
    while True:
        try:
            if one.next_event() is None:
                break
        except InputError:  # the damaged line and the torn one, as the reader reports them
            pass
        numbers.append(one.line_number)
    assert numbers == [1, 2, 3, 4]
    # begun by next_event, the rest of the lines come whole from next_block
    part = Decoder()
    part.receive_data(data[:90])
    assert part.next_event() is not None and part.next_block() == data[data.index(b"\n") + 1 : data.rindex(b"\n") + 1]
    assert part.line_number == 3


def test_next_block_without_counting_leaves_the_count_to_the_caller() -> None:
    """`next_block(count=False)` does not move `line_number`; `pass_lines` does, and a torn last line
    is then numbered after the lines passed, as with counting."""
    data = b'{"kind":"tick","seq":1,"at":5,"conn":0}\nnot json\ntorn'
    d = Decoder()
    d.receive_data(data)
    d.receive_data(b"")
    assert d.next_block(count=False) == data[: data.rindex(b"\n") + 1] and d.line_number == 0
    d.pass_lines(2)
    with pytest.raises(InputError, match="torn"):
        d.next_block(count=False)
    assert d.line_number == 3

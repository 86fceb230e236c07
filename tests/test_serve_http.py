"""serve over real HTTP on loopback: read by a client that does exactly what wubloader's backfiller
and editor do (written here from WUBLOADER_HTTP.md with the stdlib, not with our sync), window
reads racing a merge, and the command as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import export.stream
from fixtures.export import make_archive
from merge.directory import merge_tree
from serve.app import ChatApp
from serve.server import Running
from tests.archives import write_batch
from tests.wubloader_model import Backfiller

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent.parent / "fixtures" / "export"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_wubloader_backfiller_copies_our_archive(tmp_path: Path) -> None:
    with Running(ChatApp(str(FIXTURE / "archive"))) as server:
        backfiller = Backfiller(server.url, ["desertbus"], tmp_path, qualities=("chat",), extras=())
        assert backfiller.run_pass() > 0
        assert backfiller.run_pass() == 0  # a second pass finds nothing new
    ours = {p.relative_to(FIXTURE / "archive"): p.read_bytes() for p in (FIXTURE / "archive").rglob("*.json")}
    theirs = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.json")}
    assert theirs == ours


def test_wubloader_editor_reads_the_window(tmp_path: Path) -> None:
    """The editor asks with milliseconds and shows PRIVMSG, CLEARMSG, CLEARCHAT and USERNOTICE."""
    with Running(ChatApp(str(FIXTURE / "archive"))) as server:
        status, headers, body = get(
            f"{server.url}/desertbus/chat.json?start=2023-11-14T22:13:30.000&end=2023-11-14T22:16:00.000"
        )
        capped = get(f"{server.url}/desertbus/chat.json?start=2023-11-14T20:00:00.000&end=2023-11-14T22:16:00.000")
    assert status == 200 and headers["content-type"] == "application/json"
    messages = json.loads(body)
    assert messages == json.loads((FIXTURE / "expected" / "window.json").read_bytes())
    shown = [m for m in messages if m["command"] in ("PRIVMSG", "CLEARMSG", "CLEARCHAT", "USERNOTICE")]
    assert shown and all({"receivers", "time", "time_range"} <= set(m) for m in shown)
    assert [m["time"] for m in messages] == sorted(m["time"] for m in messages)
    assert capped[0] == 400 and capped[2] == b"Cannot request more than 2h of chat"


def test_etag_round_trip_over_http() -> None:
    hour = "2023-11-14T22"
    name = sorted(os.listdir(FIXTURE / "archive" / "desertbus" / "chat" / hour))[0]
    with Running(ChatApp(str(FIXTURE / "archive"))) as server:
        url = f"{server.url}/segments/desertbus/chat/{hour}/{name}"
        status, headers, body = get(url)
        assert status == 200 and body == (FIXTURE / "archive" / "desertbus" / "chat" / hour / name).read_bytes()
        assert headers["etag"] == f'"{name[6:-5]}"' and int(headers["content-length"]) == len(body)
        again = get(url, {"If-None-Match": headers["etag"]})
        assert again[0] == 304 and again[2] == b""
        raw = subprocess.run(  # a request path a browser would normalise away, sent as is
            [
                sys.executable,
                "-c",
                (
                    "import http.client, sys; c = http.client.HTTPConnection(sys.argv[1]);"
                    "c.request('GET', '/segments/desertbus/chat/..%2f..%2f..%2fetc/passwd'); r = c.getresponse();"
                    "print(r.status, r.read())"
                ),
                server.url.removeprefix("http://"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    assert raw.stdout.split()[0] in ("403", "404"), raw.stdout


# -- window reads racing a merge --------------------------------------------------------------------

T0 = 1_700_000_040


def _unmerged_archive(root: Path, minutes: int = 30, receivers: int = 3) -> set[str]:
    """Each minute holds one file per receiver, each receiver seeing every message: a merge
    replaces them all. Returns the message ids."""
    ids = set()
    for m in range(minutes):
        for r in range(receivers):
            records = []
            for k in range(5):
                t = T0 + m * 60 + k * 11 + 0.5
                mid = f"m{m}-{k}"
                ids.add(mid)
                records.append(
                    {
                        "command": "PRIVMSG",
                        "params": ["#sim", mid],
                        "sender": "u",
                        "user": "u",
                        "host": "u.tmi",
                        "tags": {"id": mid, "tmi-sent-ts": str(int(t * 1000))},
                        "receivers": {f"host{r}.Slug0.0": t + 0.1 * (r + 1)},
                        "time": t,
                        "time_range": 0,
                    }
                )
            write_batch(str(root), "sim", T0 + m * 60, records)
    return ids


def _ids(body: bytes, lines: bool) -> list[str]:
    records = [json.loads(x) for x in body.splitlines()] if lines else json.loads(body)
    return [r["tags"]["id"] for r in records]


def test_a_window_read_that_meets_a_vanished_file_starts_over_and_misses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the second minute read (the hour's folder is listed by then) triggers a whole
    merge, deleting files already listed; the read must start that chunk over and find the merged
    files."""
    root = tmp_path / "a"
    ids = _unmerged_archive(root, minutes=6)
    real = export.stream.read_minute
    merged = []
    calls = []

    def racing(files: Any, minute: int, problems: Any = None) -> Any:
        calls.append(minute)
        if len(calls) == 2:
            merged.append(merge_tree(str(root)))
        return real(files, minute, problems)

    monkeypatch.setattr(export.stream, "read_minute", racing)
    app = ChatApp(str(root), chunk_minutes=1)
    from tests.test_serve import call

    for path in ("/sim/chat.json", "/sim/chat.jsonl"):
        merged.clear()
        calls.clear()
        shutil.rmtree(root)
        _unmerged_archive(root, minutes=6)
        status, _, body = call(app, path, "start=1700000040&end=1700000400")
        assert status == 200, body
        assert merged and merged[0].files_deleted > 0
        got = _ids(body, path.endswith("l"))
        assert sorted(got) == sorted(ids), path  # each once, none missing
    assert app.metrics.retries._value.get() >= 2


@pytest.mark.slow
def test_window_reads_while_merges_run_never_fail_nor_miss(tmp_path: Path) -> None:
    """Real concurrency: a merge deletes files while clients read windows over HTTP."""
    root = tmp_path / "a"
    ids = _unmerged_archive(root)
    failures: list[str] = []
    with Running(ChatApp(str(root), chunk_minutes=1)) as server:
        for _round in range(4):
            shutil.rmtree(root)
            _unmerged_archive(root)
            merger = threading.Thread(target=merge_tree, args=(str(root),))
            merger.start()
            while merger.is_alive():
                for path in ("chat.json", "chat.jsonl"):
                    status, _, body = get(f"{server.url}/sim/{path}?start=1700000040&end=1700001840")
                    if status != 200:
                        failures.append(f"{path}: {status} {body[:200]!r}")
                    elif set(_ids(body, path.endswith("l"))) != ids:
                        failures.append(f"{path}: missing {sorted(ids - set(_ids(body, path.endswith('l'))))[:5]}")
            merger.join()
    assert failures == []


# -- the command --------------------------------------------------------------------------------


def test_serve_command_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    make_archive.build(str(root))
    exe = Path(sys.executable).parent / "chat-archiver"
    proc = subprocess.Popen([str(exe), "serve", str(root), "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ")[1].split()[0]
        assert get(f"{url}/healthz")[:3:2] == (200, b"ok")
        assert get(f"{url}/files")[2] == b'["desertbus"]'
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        rest = proc.stderr.read()
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    with Running(ChatApp(str(root))) as taken:
        port = taken.url.rsplit(":", 1)[1]
        busy = subprocess.run(
            [str(exe), "serve", str(root), "--port", port], capture_output=True, text=True, timeout=30, check=False
        )
    assert busy.returncode == 2 and "cannot listen" in busy.stderr and "Traceback" not in busy.stderr
    missing = subprocess.run(
        [str(exe), "serve", str(tmp_path / "nope")], capture_output=True, text=True, timeout=30, check=False
    )
    assert missing.returncode == 2 and "no such archive folder" in missing.stderr


def test_idle_connections_and_oversized_headers_do_not_stop_the_server() -> None:
    import socket

    with Running(ChatApp(str(FIXTURE / "archive")), threads=2) as server:
        host, port = server.url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(20)]  # slowloris: never a request
        try:
            assert get(f"{server.url}/files")[2] == b'["desertbus"]'
            status, _, _ = get(f"{server.url}/files", {"X-Junk": "x" * 300_000})
            assert status in (400, 431)
            assert get(f"{server.url}/healthz")[0] == 200
        finally:
            for s in idle:
                s.close()

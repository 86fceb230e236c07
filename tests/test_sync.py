"""sync against a fake wubloader node (built from WUBLOADER_HTTP.md) and against hostile peers.

Every hostile peer serves good files next to its bad one: the bad one gets one line and nothing on
disk, the good ones arrive, and the sync ends (exit 1 from the CLI) instead of hanging or dying.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from formats.canonical import batch_relpath, content_hash, format_batch
from sync.shell import Refusal, sync_once
from tests.archives import write_batch
from tests.httpfakes import FakeNode, send

pytestmark = pytest.mark.integration

T0 = 1_700_000_040  # 2023-11-14T22:14:00Z, a minute boundary
EVER = 0.0


def record(i: int, receiver: str = "host1.Ab3dE.0", time: float | None = None) -> dict[str, Any]:
    t = T0 + i if time is None else time
    return {
        "command": "PRIVMSG",
        "params": ["#sim", f"message {i}"],
        "sender": f"u{i}",
        "user": f"u{i}",
        "host": f"u{i}.tmi.twitch.tv",
        "tags": {"id": f"id-{i}", "tmi-sent-ts": str(int(t * 1000))},
        "receivers": {receiver: t + 0.25},
        "time": t,
        "time_range": 0,
    }


def make_archive(root: Path, seconds: list[int], receiver: str = "host1.Ab3dE.0") -> None:
    """One PRIVMSG at each of `seconds` after T0, in their minutes' files."""
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for s in seconds:
        by_minute.setdefault((T0 + s) // 60 * 60, []).append(record(s, receiver))
    for minute, records in by_minute.items():
        write_batch(str(root), "sim", minute, records)


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "quarantine"]
        for name in names:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def no_partial_files(root: Path) -> None:
    """Every file in the archive's folders is a whole batch file named by its hash."""
    for rel, data in tree(root).items():
        assert rel.endswith(".json"), rel
        assert rel.rsplit("/", 1)[1][6:-5] == content_hash(data), rel


def run_sync(root: Path, url: str, **kw: Any) -> tuple[Any, list[Refusal]]:
    refused: list[Refusal] = []
    kw.setdefault("timeout", 2.0)
    kw.setdefault("retries", 1)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("end", time.time())
    stats = sync_once(str(root), [url], start=EVER, on_refusal=refused.append, **kw)
    return stats, refused


# -- a wubloader node as a peer --------------------------------------------------------------------


def test_sync_from_a_wubloader_node_copies_everything_and_a_second_sync_fetches_nothing(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 2, 61, 3700])  # three minutes in two hours
    (node_dir / "sim" / "chat" / "2023-11-14T22" / "14:00-x.json.123.temp").write_bytes(b"partial")
    with FakeNode(str(node_dir)) as node:
        stats, refused = run_sync(tmp_path / "local", node.url)
        assert refused == []
        assert stats.files_fetched == 3 and stats.hours_listed == 2
        whole = {rel: data for rel, data in tree(node_dir).items() if rel.endswith(".json")}  # the .temp stays
        assert tree(tmp_path / "local") == whole and len(whole) == 3
        # the backfiller's calls, exactly as the spec says
        assert "/files/sim/chat/2023-11-14T22?tombstones=true" in node.requests
        node.requests.clear()
        again, refused = run_sync(tmp_path / "local", node.url)
        assert refused == [] and again.files_fetched == 0
        assert not any(r.startswith("/segments/") for r in node.requests)


def test_a_listed_file_gone_on_the_peer_is_skipped_quietly(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 61])
    hour, name = batch_relpath(T0 + 120, "A" * 43)

    def listing(handler: BaseHTTPRequestHandler) -> None:
        names = [*sorted(os.listdir(node_dir / "sim" / "chat" / hour)), name]  # listed, then merged away
        send(handler, 200, json.dumps(names).encode())

    with FakeNode(str(node_dir), {f"/files/sim/chat/{hour}": listing}) as node:
        stats, refused = run_sync(tmp_path / "local", node.url)
    assert refused == []
    assert stats.files_gone == 1 and stats.files_fetched == 2


def test_sync_merges_what_it_fetched_with_what_it_had(tmp_path: Path) -> None:
    """The local and the peer's file of one minute become one file holding both receivers."""
    node_dir, local = tmp_path / "node", tmp_path / "local"
    make_archive(node_dir, [1, 2], receiver="host2.Zz9yX.0")
    make_archive(local, [2, 3], receiver="host1.Ab3dE.0")
    with FakeNode(str(node_dir)) as node:
        stats, refused = run_sync(local, node.url)
    assert refused == [] and stats.minutes_merged >= 1
    files = tree(local)
    assert len(files) == 1
    lines = [json.loads(line) for line in next(iter(files.values())).splitlines()]
    assert [r["params"][1] for r in lines] == ["message 1", "message 2", "message 3"]
    assert set(lines[1]["receivers"]) == {"host1.Ab3dE.0", "host2.Zz9yX.0"}


def test_since_limits_the_hours_listed(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 3700])
    with FakeNode(str(node_dir)) as node:
        stats = sync_once(str(tmp_path / "local"), [node.url], start=T0 + 3600, end=T0 + 7200)
    assert stats.hours_listed == 1 and stats.files_fetched == 1


# -- hostile peers --------------------------------------------------------------------------------


def _good_and(tmp_path: Path, hostile_name: str | None = None) -> tuple[Path, str, str]:
    """A node with two good files in one hour, and a listing that also names `hostile_name`."""
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 61])
    hour = batch_relpath(T0, "")[0]
    return node_dir, hour, hostile_name or ""


def _listing_with(node_dir: Path, hour: str, extra: list[str]) -> Any:
    def listing(handler: BaseHTTPRequestHandler) -> None:
        names = sorted(os.listdir(node_dir / "sim" / "chat" / hour)) + extra
        send(handler, 200, json.dumps(names).encode())

    return listing


def _check_hostile(tmp_path: Path, overrides: dict[str, Any], *, reason: str, **kw: Any) -> list[Refusal]:
    node_dir = tmp_path / "node"
    local = tmp_path / "local"
    with FakeNode(str(node_dir), overrides) as node:
        stats, refused = run_sync(local, node.url, **kw)
    assert len(refused) == 1, refused
    assert reason in str(refused[0]), refused[0]
    assert "\n" not in str(refused[0])
    assert stats.files_fetched == 2  # the good files came anyway
    no_partial_files(local)
    assert len(tree(local)) == 2
    return refused


def test_wrong_hash_is_refused_and_not_written(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    body = format_batch([record(130)])
    liar = batch_relpath(T0 + 120, content_hash(body + b" "))[1]

    def serve_body(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body)

    _check_hostile(
        tmp_path,
        {
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [liar]),
            f"/segments/sim/chat/{hour}/{liar}": serve_body,
        },
        reason="file name does not match its content's hash",
    )


def test_body_with_right_hash_but_junk_records_is_refused(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    body = b'{"not": "a record"}\n'
    name = batch_relpath(T0 + 120, content_hash(body))[1]
    _check_hostile(
        tmp_path,
        {
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]),
            f"/segments/sim/chat/{hour}/{name}": lambda h: send(h, 200, body),
        },
        reason="record keys wrong",
    )


def test_junk_json_listing_is_refused(tmp_path: Path) -> None:
    node_dir, _hour, _ = _good_and(tmp_path)
    make_archive(node_dir, [3700])  # a second hour, whose listing is junk
    junk_hour = batch_relpath(T0 + 3700, "")[0]
    _check_hostile(tmp_path, {f"/files/sim/chat/{junk_hour}": lambda h: send(h, 200, b"<html>oops")}, reason="not JSON")


def test_names_escaping_root_are_refused(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    hostile = ["../../../etc/passwd.json"]
    refused = _check_hostile(
        tmp_path, {f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, hostile)}, reason="not a batch file name"
    )
    assert "passwd" in str(refused[0])
    assert not (tmp_path / "etc").exists()


def test_hostile_hour_and_channel_names_are_refused(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 61])
    hours = json.dumps(["2023-11-14T22", "../../x", "2023-13-40T99"]).encode()
    channels = json.dumps(["sim", "../evil", ".hidden", "quarantine", "trail\n", "\u202eevil", "con", "lpt1"]).encode()
    with FakeNode(
        str(node_dir), {"/files/sim/chat": lambda h: send(h, 200, hours), "/files": lambda h: send(h, 200, channels)}
    ) as node:
        stats, refused = run_sync(tmp_path / "local", node.url)
    assert stats.files_fetched == 2
    assert sorted(str(r) for r in refused) == sorted(
        f"{node.url}: /files: channel name {n!r} cannot be a folder: skipped"
        for n in ("../evil", ".hidden", "quarantine", "trail\n", "\u202eevil", "con", "lpt1")
    )
    assert sorted(os.listdir(tmp_path / "local")) == [".sync", "sim"]


def test_huge_body_is_refused_at_the_limit(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    name = batch_relpath(T0 + 120, "B" * 43)[1]

    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**12))
        handler.end_headers()
        handler.wfile.write(b"x" * 100_000)

    _check_hostile(
        tmp_path,
        {f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]), f"/segments/sim/chat/{hour}/{name}": huge},
        reason="over the limit",
        max_file=50_000,
    )


def test_endless_body_is_cut_at_the_limit(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    name = batch_relpath(T0 + 120, "C" * 43)[1]

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"y" * 8192
        try:
            while not handler.server.node.stop.is_set():  # type: ignore[attr-defined]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass

    _check_hostile(
        tmp_path,
        {
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]),
            f"/segments/sim/chat/{hour}/{name}": endless,
        },
        reason="over the limit",
        max_file=200_000,
    )


def test_slow_drip_and_hanging_peers_time_out(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    drip_name = batch_relpath(T0 + 120, "D" * 43)[1]
    hang_name = batch_relpath(T0 + 180, "E" * 43)[1]

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        stop = handler.server.node.stop  # type: ignore[attr-defined]
        for _ in range(1000):  # a byte every 0.2 s: never a read timeout, but far too slow overall
            if stop.wait(0.2):
                return
            handler.wfile.write(b"z")
            handler.wfile.flush()

    def hang(handler: BaseHTTPRequestHandler) -> None:
        handler.server.node.stop.wait(30)  # type: ignore[attr-defined]

    node_dir_listing = _listing_with(node_dir, hour, [drip_name, hang_name])
    local = tmp_path / "local"
    began = time.monotonic()
    with FakeNode(
        str(node_dir),
        {
            f"/files/sim/chat/{hour}": node_dir_listing,
            f"/segments/sim/chat/{hour}/{drip_name}": drip,
            f"/segments/sim/chat/{hour}/{hang_name}": hang,
        },
    ) as node:
        stats, refused = run_sync(local, node.url, timeout=0.5, retries=1, answer_time=2.0)
    assert time.monotonic() - began < 20
    reasons = sorted(r.reason for r in refused)
    assert len(reasons) == 2 and "too slow" in reasons[0] and "timed out" in reasons[1], reasons
    assert stats.files_fetched == 2
    no_partial_files(local)


def test_redirect_to_another_host_is_not_followed(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    name = batch_relpath(T0 + 120, "F" * 43)[1]
    with FakeNode(str(tmp_path)) as elsewhere:
        # the same machine under another name is another host as far as the peer's URL goes
        target = elsewhere.url.replace("127.0.0.1", "localhost") + "/secret"

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            send(handler, 302, b"", headers={"Location": target})

        _check_hostile(
            tmp_path,
            {
                f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]),
                f"/segments/sim/chat/{hour}/{name}": redirect,
            },
            reason="redirect to another host refused",
        )
        assert elsewhere.requests == []


def test_redirect_on_the_same_host_is_followed(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    real = sorted(os.listdir(node_dir / "sim" / "chat" / hour))[0]
    body = (node_dir / "sim" / "chat" / hour / real).read_bytes()

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 307, b"", headers={"Location": f"/elsewhere/{real}"})

    with FakeNode(
        str(node_dir),
        {f"/segments/sim/chat/{hour}/{real}": redirect, f"/elsewhere/{real}": lambda h: send(h, 200, body)},
    ) as node:
        stats, refused = run_sync(tmp_path / "local", node.url)
        assert f"/elsewhere/{real}" in node.requests
    assert refused == [] and stats.files_fetched == 2


def test_a_peer_that_is_down_is_one_line(tmp_path: Path) -> None:
    with FakeNode(str(tmp_path)) as node:
        url = node.url
    stats, refused = run_sync(tmp_path / "local", url, timeout=0.5)
    assert len(refused) == 1 and "cannot reach the peer" in refused[0].reason
    assert stats.files_fetched == 0


def test_server_errors_are_retried(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1])
    calls: list[int] = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) < 3:
            send(handler, 503, b"busy")
        else:
            send(handler, 200, json.dumps(["sim"]).encode())

    with FakeNode(str(node_dir), {"/files": flaky}) as node:
        stats, refused = run_sync(tmp_path / "local", node.url, retries=3)
    assert refused == [] and stats.files_fetched == 1 and len(calls) == 3


# -- the command, as a user runs it --------------------------------------------------------------


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    runner = CliRunner()
    with FakeNode(str(node_dir)) as node:
        ok = runner.invoke(app, ["sync", str(tmp_path / "a"), "--from", node.url, "--since", "2023-01-01", "--json"])
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["files_fetched"] == 2
        assert ok.stderr == ""
    bad_name = batch_relpath(T0 + 120, "G" * 43)[1]
    with FakeNode(
        str(node_dir),
        {
            f"/segments/sim/chat/{hour}/{bad_name}": lambda h: send(h, 200, b"junk\n"),
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [bad_name]),
        },
    ) as node:
        bad = runner.invoke(app, ["sync", str(tmp_path / "b"), "--from", node.url, "--since", "2023-01-01", "--json"])
    assert bad.exit_code == 1, bad.output
    assert json.loads(bad.stdout)["files_fetched"] == 2
    assert bad.stderr.count("refused:") == 1 and "Traceback" not in bad.stderr
    usage = runner.invoke(app, ["sync", str(tmp_path / "c"), "--from", "ftp://x", "--json"])
    assert usage.exit_code == 2 and "http://HOST:PORT" in usage.stderr
    usage = runner.invoke(app, ["sync", str(tmp_path / "c"), "--from", "http://127.0.0.1:1", "--since", "soon"])
    assert usage.exit_code == 2 and "--since" in usage.stderr


def test_an_hour_removed_by_hand_is_fetched_again(tmp_path: Path) -> None:
    node_dir, local = tmp_path / "node", tmp_path / "local"
    make_archive(node_dir, [1, 3700])
    with FakeNode(str(node_dir)) as node:
        assert run_sync(local, node.url)[0].files_fetched == 2
        shutil.rmtree(local / "sim" / "chat" / "2023-11-14T22")
        again, refused = run_sync(local, node.url)
    assert refused == [] and again.files_fetched == 1
    assert tree(local) == tree(node_dir)


def test_a_flood_of_names_in_one_hour_is_refused_whole() -> None:
    from sync.plan import MAX_NAMES, plan_hour

    flood = [f"{m % 60:02d}:00-{i:043d}.json" for i, m in enumerate(range(MAX_NAMES + 1))]
    plan = plan_hour("sim", "2023-11-14T22", flood, set())
    assert plan.wanted == [] and len(plan.refused) == 1 and "none fetched" in plan.refused[0][1]
    assert len(plan_hour("sim", "2023-11-14T22", flood[:100], set()).wanted) == 100


def test_a_sync_that_fetches_nothing_still_finishes_a_merge_a_kill_left(tmp_path: Path) -> None:
    node_dir, local = tmp_path / "node", tmp_path / "local"
    make_archive(node_dir, [1])
    with FakeNode(str(node_dir)) as node:
        run_sync(local, node.url)
        make_archive(local, [2], receiver="host9.Zz9yX.0")  # a second file in the minute: unmerged
        assert len(tree(local)) == 2
        again, refused = run_sync(local, node.url)
    assert refused == [] and again.files_fetched == 0 and again.minutes_merged == 1
    assert len(tree(local)) == 1


def test_a_stray_file_at_a_peers_top_is_skipped_with_a_notice_and_the_pass_succeeds(tmp_path: Path) -> None:
    """A wubloader node lists every name in its base folder; listing a stray video file as a
    channel answers 500 there. A real channel answering 500 still fails the pass."""
    node_dir = tmp_path / "node"
    make_archive(node_dir, [1, 61])
    stray = "desertbus_source_myvideo_0.mkv"
    channels = json.dumps(["sim", stray]).encode()

    def broken(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 500, b"Internal Server Error")

    overrides = {"/files": lambda h: send(h, 200, channels), f"/files/{stray}/chat": broken}
    runner = CliRunner()
    with FakeNode(str(node_dir), overrides) as node:
        stats, refused = run_sync(tmp_path / "local", node.url)
        assert refused == [] and stats.files_fetched == 2
        assert [str(s) for s in stats.skipped] == [
            f"{node.url}: /files: {stray!r} cannot be a channel (a file?): skipped"
        ]
        assert f"/files/{stray}/chat" not in node.requests
        ok = runner.invoke(app, ["sync", str(tmp_path / "a"), "--from", node.url, "--since", "2023-01-01", "--json"])
    assert ok.exit_code == 0, ok.output
    assert ok.stderr.count("skipped:") == 1 and "refused" not in ok.stderr
    with FakeNode(str(node_dir), {"/files/sim/chat": broken}) as node:
        bad = runner.invoke(app, ["sync", str(tmp_path / "b"), "--from", node.url, "--since", "2023-01-01"])
    assert bad.exit_code == 1, bad.output
    assert "refused:" in bad.stderr and "/files/sim/chat" in bad.stderr


YEAR_9999 = 253_402_300_740  # 9999-12-31T23:59:00Z


@pytest.mark.parametrize(
    ("minute", "times", "now", "reason"),
    [
        (T0 + 120, [T0 + 130, YEAR_9999 + 1], None, "line 2: time 253402300741 is more than a day from the file's"),
        (T0 + 120, [T0 + 130 - 2 * 86_400], None, "more than a day from the file's minute"),
        (YEAR_9999, [YEAR_9999 + 1], None, "its minute is more than a day ahead of now"),
        (T0 + 2 * 86_400, [T0 + 2 * 86_400 + 1], T0 + 200, "its minute is more than a day ahead of now"),
        (1_000_020, [1_000_021], None, "its minute is before 2011"),
    ],
)
def test_a_correctly_hashed_file_at_an_implausible_time_is_refused(
    tmp_path: Path, minute: int, times: list[int], now: float | None, reason: str
) -> None:
    """A peer's file is believed only for times a recorder could have seen: its minute not before
    2011 nor more than a day ahead of now, its records within a day of its minute. One line each."""
    node_dir, hour, _ = _good_and(tmp_path)
    body = format_batch([record(i, time=t) for i, t in enumerate(times)])
    bad_hour, name = batch_relpath(minute, content_hash(body))
    listing = (
        _listing_with(node_dir, hour, [name])
        if bad_hour == hour
        else lambda h: send(h, 200, json.dumps([name]).encode())
    )
    routes = {
        f"/files/sim/chat/{bad_hour}": listing,
        f"/segments/sim/chat/{bad_hour}/{name}": lambda h: send(h, 200, body),
    }
    if bad_hour != hour:
        hours = json.dumps([hour, bad_hour]).encode()
        routes["/files/sim/chat"] = lambda h: send(h, 200, hours)
    with FakeNode(str(node_dir), routes) as node:
        at_now = {} if now is None else {"now": now}
        stats, refused = run_sync(tmp_path / "local", node.url, end=YEAR_9999 + 3600, **at_now)
    assert len(refused) == 1 and reason in refused[0].reason, refused
    assert stats.files_fetched == 2  # the good files came anyway
    assert all("9999" not in rel and "1970" not in rel for rel in tree(tmp_path / "local")), tree(tmp_path / "local")


def test_a_batch_name_in_arabic_indic_digits_is_refused(tmp_path: Path) -> None:
    """`\\d` matched any script's digits: such a name was written, then the sync died on it."""
    node_dir, hour, _ = _good_and(tmp_path)
    body = format_batch([record(130)])
    name = "\u0660\u0662:00-" + content_hash(body) + ".json"
    _check_hostile(
        tmp_path,
        {
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]),
            f"/segments/sim/chat/{hour}/{name}": lambda h: send(h, 200, body),
        },
        reason="not a batch file name",
    )


class _Decoy:
    """A loopback listener that must never be contacted: it counts the connections it accepts."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


# Locations two URL parsers read differently (RFC 3986 urlsplit vs WHATWG), or that leave the
# peer's exact origin: P is the peer's port, D the decoy's.
PARSER_TRICKS = [
    "http://127.0.0.1:{D}\\@127.0.0.1:{P}/x",  # WHATWG: a backslash is a slash, the host is before it
    "http://127.0.0.1:{D}\\anything@127.0.0.1:{P}/x",
    "http://localhost:{D}\\@127.0.0.1:{P}/x",
    "/\\127.0.0.1:{D}/x",  # WHATWG: /\ starts an authority; RFC: a path
    "\\\\127.0.0.1:{D}/x",
    "http:/127.0.0.1:{D}/x",  # WHATWG: special scheme, host follows; RFC: a path on the same host
    "http:127.0.0.1:{D}/x",
    "ht\ttp://127.0.0.1:{D}/x",  # WHATWG drops tabs anywhere
    "http://127.0.0.1:{D}\t/x",
    "http://127.0.0.1:{D}\u00a0/x",
    "HTTP://127.0.0.1:{D}/x",
    "http://127.0.0.1:{P}@127.0.0.1:{D}/x",  # userinfo
    "http://user:secret@127.0.0.1:{P}/x",  # userinfo on the right origin: refused all the same
    "http://127.0.0.1:{D}#@127.0.0.1:{P}/x",
    "http://127.0.0.1:{D}?@127.0.0.1:{P}/x",
    "//127.0.0.1:{D}/x",  # scheme-relative
    "http://127.0.0.1:{D}/x",
    "http://127.0.0.1:0{P}/x",  # leading zero
    "http://127.0.0.1:{P_WRAP}/x",  # past 65535 (wraps to the peer's port modulo 65536)
    "http://127.0.0.1:/x",  # empty port
    "http://127.0.0.1:+{P}/x",
    "http://%31%32%37.0.0.1:{D}/x",  # percent-encoded host
    "http://127.0.0.1%2f@127.0.0.1:{P}/x",
    "http://[::1%25lo]:{D}/x",  # IPv6 zone id
    "http://[::ffff:127.0.0.1]:{D}/x",
    "http://0x7f.1:{P}/x",  # WHATWG: 127.0.0.1; RFC: a name; not the peer's host as written
    "http://2130706433:{P}/x",
    "http://127.1:{P}/x",
    "http://LOCALHOST:{D}/x",
    "https://127.0.0.1:{P}/x",  # another scheme
]


@pytest.mark.parametrize("trick", PARSER_TRICKS)
def test_a_redirect_any_parser_reads_elsewhere_is_refused(tmp_path: Path, trick: str) -> None:
    node_dir, hour, _ = _good_and(tmp_path)
    name = batch_relpath(T0 + 120, "F" * 43)[1]
    decoy = _Decoy()
    try:
        with FakeNode(str(node_dir)) as probe:
            peer_port = int(probe.url.rsplit(":", 1)[1])
        location = trick.format(D=decoy.port, P=peer_port, P_WRAP=peer_port + 65536)

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            send(handler, 302, b"", headers={"Location": location})

        routes = {
            f"/files/sim/chat/{hour}": _listing_with(node_dir, hour, [name]),
            f"/segments/sim/chat/{hour}/{name}": redirect,
        }
        with FakeNode(str(node_dir), routes) as node:
            stats, refused = run_sync(tmp_path / "local", node.url)
        assert len(refused) == 1 and "redirect to another host refused" in refused[0].reason, refused
        assert "secret" not in refused[0].reason or "user:secret" in location
        assert stats.files_fetched == 2
    finally:
        decoy.close()
    assert decoy.accepted == 0


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:8008\\@example.org/",
        "http://user:token@127.0.0.1:8008",
        "http://127.0.0.1:08008",
        "http://127.0.0.1:99999",
        "http://%6c%6f%63%61%6c%68%6f%73%74:8008",
        "http://[::1%25eth0]:8008",
        "http://127.0.0.1:8008/\t",
        "http:/127.0.0.1:8008",
    ],
)
def test_a_peer_url_any_parser_reads_otherwise_is_a_usage_error(tmp_path: Path, base: str) -> None:
    from formats.errors import UsageError

    with pytest.raises(UsageError) as e:
        sync_once(str(tmp_path / "local"), [base], start=EVER, end=time.time(), timeout=0.5, retries=0)
    assert "token" not in str(e.value)


def test_cli_syncs_the_chat_before_the_media_folders(tmp_path: Path) -> None:
    """A peer's media folders come after its chat, so a slow media peer never delays chat; a
    stalled extras listing costs at most --extras-timeout (one line), and the chat is in."""
    node_dir, hour, _ = _good_and(tmp_path)
    asked: list[str] = []

    def chat_file(handler: BaseHTTPRequestHandler) -> None:
        asked.append("chat")
        name = handler.path.rsplit("/", 1)[1].replace("%3A", ":")
        send(handler, 200, (node_dir / "sim" / "chat" / hour / name).read_bytes(), "application/json")

    def extras(handler: BaseHTTPRequestHandler) -> None:
        asked.append("extras")
        time.sleep(1.5)  # longer than --extras-timeout: the other folders wait for the next pass
        send(handler, 200, b"[]", "application/json")

    overrides = {f"/segments/sim/chat/{hour}/*": chat_file, "/extras/*": extras}
    with FakeNode(str(node_dir), overrides) as node:
        result = CliRunner().invoke(
            app,
            ["sync", str(tmp_path / "a"), "--from", node.url, "--since", "2023-01-01", "--extras-timeout", "1"],
        )
    assert asked[:2] == ["chat", "chat"] and asked[2:] == ["extras"], asked
    assert "took over 1 s" in result.stderr, result.output

"""Recorder benchmarks: ingest rate and CPU per 1,000 lines; messages lost per network fault.

Prints `name: value unit` lines. Ingest (`ingest()`): a separate process plays Twitch: it answers the WebSocket upgrade,
sends the CAP ACK, the welcome, our JOIN echo and the ROOMSTATE without waiting to be asked (the
recorder does not care about the order of those), then pushes N tagged PRIVMSG lines of Twitch's
usual size, one per frame, as fast as the socket takes them, and closes. The recorder runs in this
process with its real writer (flush per line, fsync each second) into a temporary folder, so
`time.process_time()` here is the recorder's CPU only. The rate is taken from the recording's own
receive times of the first and last PRIVMSG. Target: 50 times a large channel's peak of a few
hundred lines/s on one core.

Chaos (`chaos()`). The test suite's Twitch-like server publishes a live channel at 10
messages/s; the test suite's fault-injecting proxy sits between it and a recorder at its default
settings. In turn: stalls that clear after 8 s (longer than the watchdog's 3 s + 3 s), a stall that
never clears (the path stays black until it is cut 20 s later), cuts with FIN and with RST. Each
message the channel published but no connection recorded is charged to the fault before it; the
same run against the recorder before issue 14 is printed beside it. About 80 s;
`BENCH_RECORDER_CHAOS=0` skips it (`BENCH_RECORDER_LINES` sets the size of the ingest run).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import multiprocessing
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import bench
from formats.rawfile import find_raw_files, group_streams, iter_stream_events
from recorder.recorder import Recorder, RecorderConfig

NICK = "benchbot"
CHANNEL = "bench"
PEAK_LINES_PER_S = 300  # a large Twitch channel at its peak (SERVERS.md)


def _frame(text: str) -> bytes:
    data = text.encode()
    n = len(data)
    head = struct.pack("!BB", 0x81, n) if n < 126 else struct.pack("!BBH", 0x81, 126, n)
    return head + data


def _line(i: int) -> str:
    user = f"user{i % 1000:04d}"
    return (
        f"@badge-info=subscriber/14;badges=subscriber/12,bits/1000;client-nonce=8f2c1e0b9a7d4c3e;"
        f"color=#1E90FF;display-name={user.capitalize()};emotes=25:0-4;first-msg=0;flags=;"
        f"id=0b7c2e9a-{i:08d}-4c3e-9a7d-8f2c1e0b9a7d;mod=0;returning-chatter=0;room-id=71092938;"
        f"subscriber=1;tmi-sent-ts={1_764_320_000_000 + i};turbo=0;user-id={100000 + i % 1000};user-type= "
        f":{user}!{user}@{user}.tmi.twitch.tv PRIVMSG #{CHANNEL} :Kappa that was a great play, "
        f"message number {i} in the benchmark run"
    )


def _serve(listener: socket.socket, lines: int) -> None:
    """The fake Twitch: one connection, everything unasked, then `lines` PRIVMSGs and a close."""
    # Built before the client connects, so the server is never what limits the rate.
    payload = [
        b"".join(_frame(_line(i) + "\r\n") for i in range(k, min(k + 1024, lines))) for k in range(0, lines, 1024)
    ]
    conn, _ = listener.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += conn.recv(4096)
    headers = buf.decode("latin-1").split("\r\n")
    key = next(h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    conn.sendall(
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )

    def drain() -> None:  # the client's frames (CAP, NICK, JOIN, close) are not needed
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    hello = [
        ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands twitch.tv/membership",
        f":tmi.twitch.tv 001 {NICK} :Welcome, GLHF!",
        f":{NICK}!{NICK}@{NICK}.tmi.twitch.tv JOIN #{CHANNEL}",
        f"@emote-only=0;followers-only=-1;r9k=0;room-id=71092938;slow=0;subs-only=0 "
        f":tmi.twitch.tv ROOMSTATE #{CHANNEL}",
    ]
    conn.sendall(b"".join(_frame(line + "\r\n") for line in hello))
    for chunk in payload:
        conn.sendall(chunk)
    conn.sendall(struct.pack("!BBH", 0x88, 2, 1000))
    time.sleep(1.0)  # let the client read the close before the socket goes
    conn.close()


def _server_main(port_queue: Any, lines: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port_queue.put(listener.getsockname()[1])
    try:
        _serve(listener, lines)
    finally:
        listener.close()


def ingest() -> None:
    lines = int(os.environ.get("BENCH_RECORDER_LINES", "200000"))
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_server_main, args=(ports, lines))
    server.start()
    port = ports.get(timeout=120)
    out = tempfile.mkdtemp(prefix="bench_recorder_")
    try:
        config = RecorderConfig(
            channels=(CHANNEL,),
            out_dir=out,
            server=f"ws://127.0.0.1:{port}",
            dialect="twitch",
            name="bench",
            nick=NICK,
            backoff_base=5.0,
            backoff_cap=5.0,
        )
        recorder = Recorder(config)
        thread = threading.Thread(target=recorder.run)
        cpu0 = time.process_time()
        thread.start()

        def privmsgs() -> int:
            return recorder.stats.lines_total().get((CHANNEL, "PRIVMSG"), 0)

        deadline = time.monotonic() + 120
        while privmsgs() < lines and time.monotonic() < deadline:
            time.sleep(0.01)
        cpu = time.process_time() - cpu0
        recorder.stop()
        thread.join(30)
        server.join(30)
        got = privmsgs()
        problems: list[Any] = []
        ats = [
            e.at
            for s in group_streams(find_raw_files([out]), problems)
            for e in iter_stream_events(s, problems)
            if e.kind == "recv" and " PRIVMSG " in e.text
        ]
        size = sum(os.path.getsize(p) for p in find_raw_files([out]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if server.is_alive():
            server.kill()
            server.join()
    seconds = (ats[-1] - ats[0]) / 1e6 if len(ats) > 1 else float("nan")
    rate = (len(ats) - 1) / seconds if seconds > 0 else float("nan")
    print(
        f"recorder.ingest_lines_per_s: {rate:.0f} lines/s ({got} of {lines} tagged PRIVMSG lines in {seconds:.2f} s, "
        f"{len(problems)} read-back problems)"
    )
    print(f"recorder.cpu_per_1000_lines: {cpu / max(got, 1) * 1000:.4f} s (recorder process CPU, all threads)")
    print(f"recorder.peak_multiple: {rate / PEAK_LINES_PER_S:.0f} x (a {PEAK_LINES_PER_S} lines/s peak; target 50 x)")
    print(f"recorder.bytes_per_line: {size / max(got, 1):.0f} bytes (raw recording on disk, uncompressed)")


# The same run against the recorder before issue 14 (commit 9e2a126's recorder/, measured once on
# the development machine; docs/recorder.md "Network faults"). Its watchdog needed 90 s, so an 8 s
# stall never tripped it, and the black stall lasted until the proxy cut it at 20 s.
BEFORE = {
    "stall_cleared": "0 (its 60 s + 30 s watchdog never fired; a longer stall lost its backlog)",
    "stall_black": "191, the whole 20 s until the cut",
    "cut_fin": "20.5 (the backoff kept growing under repeated cuts)",
    "cut_rst": "48.0",
}


def _chaos_faults() -> list[tuple[str, float, Callable[[Any], None]]]:
    """(kind, seconds to let it play out, what to do to the current pipe)."""

    def stall_clearing(pipe: Any) -> None:
        pipe.stall(8.0)

    def stall_black(pipe: Any) -> None:
        pipe.stall()
        threading.Timer(20.0, pipe.cut, args=("fin",)).start()

    def cut_fin(pipe: Any) -> None:
        pipe.cut("fin")

    def cut_rst(pipe: Any) -> None:
        pipe.cut("rst")

    return [
        ("stall_cleared", 14.0, stall_clearing),
        ("stall_cleared", 14.0, stall_clearing),
        ("stall_black", 24.0, stall_black),
        ("cut_fin", 6.0, cut_fin),
        ("cut_fin", 6.0, cut_fin),
        ("cut_rst", 6.0, cut_rst),
        ("cut_rst", 6.0, cut_rst),
    ]


def chaos() -> None:
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    sys.path.insert(0, tests)
    from faultproxy import FaultProxy  # noqa: PLC0415 (test helpers, only on the path from here)
    from twitchlike import LiveChannel, ServerConn, TwitchLikeServer  # noqa: PLC0415

    channel = LiveChannel("bench", interval=0.1, always=True)  # 10 messages/s, joined or not

    def script(conn: ServerConn) -> None:
        if conn.wait_joined(["bench"]):
            channel.join(conn)

    out = tempfile.mkdtemp(prefix="bench_chaos_")
    marks: list[tuple[str, int]] = []  # (kind, first message index published after the fault began)
    try:
        with TwitchLikeServer(script) as server, FaultProxy(server.port) as proxy:
            channel.start()
            config = RecorderConfig(channels=("bench",), out_dir=out, server=proxy.url, dialect="twitch", name="chaos")
            recorder = Recorder(config)
            thread = threading.Thread(target=recorder.run)
            thread.start()
            try:
                deadline = time.monotonic() + 30
                while not channel.members and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(3.0)
                for kind, settle, fault in _chaos_faults():
                    deadline = time.monotonic() + 60
                    while not (live := [p for p in proxy.pipes if not p.closed.is_set()]):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the recorder did not reconnect within 60 s")
                        time.sleep(0.05)
                    marks.append((kind, len(channel.published)))
                    fault(live[-1])  # the newest connection: the one recording now
                    time.sleep(settle)
                marks.append(("end", len(channel.published)))
                time.sleep(2.0)
            finally:
                channel.finish()
                recorder.stop()
                thread.join(60)
        problems: list[Any] = []
        recorded = {
            e.text
            for s in group_streams(find_raw_files([out]), problems)
            for e in iter_stream_events(s, problems)
            if e.kind == "recv"
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    lost: dict[str, list[int]] = {}
    for (kind, start), (_next, end) in itertools.pairwise(marks):
        missing = sum(1 for line in channel.published[start:end] if line not in recorded)
        lost.setdefault(kind, []).append(missing)
    for kind, counts in lost.items():
        print(
            f"recorder.chaos.lost_per_{kind}: {sum(counts) / len(counts):.1f} messages "
            f"(each: {counts}; at 10 messages/s, default settings; before issue 14: {BEFORE[kind]})"
        )
    print(f"recorder.chaos.published: {len(channel.published)} messages, {len(problems)} read-back problems")


def run() -> None:
    ingest()
    if os.environ.get("BENCH_RECORDER_CHAOS", "1") != "0":
        chaos()


if __name__ == "__main__":
    bench.main(__spec__.name if __spec__ else __file__, __doc__, run, sys.argv[1:])

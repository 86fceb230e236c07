"""A simulated Twitch server and recorders, shared by the soundness, merge and convergence tests.

A server emits a stream with true send times; simulated recorders (1-3, each with its own clock
offset) hold connections that open, drop and reconnect (overlapping windows are RECONNECT
overlaps). Delivery on a connection is FIFO with latency 0-3 s (so the jitter between two lines is
within the 5 s padding) and a clock offset of at most 1 s; JOIN/PART enter the stream up to 30 s
after they happened, as Twitch batches them. `scenarios()` draws such a world; `record_scenario()`
writes the recorders' raw recordings and returns which (receiver, event) pairs were delivered after
the channel was initialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from recorder.rawwriter import RawWriter

BASE_MS = 1_700_000_000_000
KINDS = ["PRIVMSG", "PRIVMSG", "PRIVMSG", "CLEARCHAT", "JOIN", "PART", "NOTICE", "ROOMSTATE"]
# Float rounding of the µs receive times and of the estimate arithmetic: far below a millisecond.
EPSILON = 1e-6


def server_line(i: int, kind: str, sent_ms: int) -> str:
    ts = f"tmi-sent-ts={sent_ms}"
    if kind == "PRIVMSG":
        return f"@id=msg-{i};room-id=1;{ts} :u{i}!u{i}@u{i}.tmi.twitch.tv PRIVMSG #sim :m{i}"
    if kind == "CLEARCHAT":
        return f"@room-id=1;{ts} :tmi.twitch.tv CLEARCHAT #sim :u{i}"
    if kind in ("JOIN", "PART"):
        return f":u{i}!u{i}@u{i}.tmi.twitch.tv {kind} #sim"
    if kind == "NOTICE":
        return f"@msg-id=n :tmi.twitch.tv NOTICE #sim :n{i}"
    return f"@room-id=1;slow={i} :tmi.twitch.tv ROOMSTATE #sim"


def event_index(record: dict[str, Any]) -> int:
    """Which server event a record came from (each line carries its index)."""
    command, params, tags = record["command"], record["params"], record["tags"]
    if command in ("PRIVMSG", "NOTICE"):
        return int(params[1][1:])
    if command == "CLEARCHAT":
        return int(params[1][1:])
    if command in ("JOIN", "PART"):
        return int(record["sender"][1:])
    return int(tags["slow"])


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 30))
    sent = []
    t = BASE_MS + draw(st.integers(0, 59_999))
    for _ in range(n):
        t += draw(st.integers(0, 8_000))
        sent.append(t)
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(n)]
    # JOIN/PART enter the stream late; everything else when it happens.
    emitted = [
        s + (draw(st.integers(0, 30_000)) if k in ("JOIN", "PART") else 0) for s, k in zip(sent, kinds, strict=True)
    ]
    span = max(emitted) - BASE_MS + 20_000
    recorders = []
    for r in range(draw(st.integers(1, 3))):
        windows = []
        for _ in range(draw(st.integers(1, 3))):
            start = BASE_MS + draw(st.integers(-5_000, span))
            windows.append((start, start + draw(st.integers(1_000, span + 10_000))))
        latencies = draw(st.lists(st.integers(0, 3_000), min_size=n, max_size=n))
        recorders.append(
            {
                "name": f"host{r}",
                "offset": draw(st.integers(-1_000, 1_000)),
                "windows": sorted(windows),
                "latency": latencies,
            }
        )
    return {"sent": sent, "kinds": kinds, "emitted": emitted, "recorders": recorders}


def record_scenario(scn: dict[str, Any], raw_dir: Path) -> set[tuple[str, int]]:
    """Write each recorder's raw recording; return the (receiver, event) pairs delivered after init."""
    order = sorted(range(len(scn["sent"])), key=lambda i: (scn["emitted"][i], i))
    delivered = set()
    for rec in scn["recorders"]:
        off = rec["offset"]
        timeline = []  # (local µs, tiebreak, action)
        for conn, (open_ms, close_ms) in enumerate(rec["windows"]):
            init_ms = open_ms + 100
            timeline.append(((open_ms + off) * 1000, 0, conn, "open", ""))
            timeline.append(
                ((init_ms + off) * 1000, 1, conn, "recv", "@room-id=1;slow=-1 :tmi.twitch.tv ROOMSTATE #sim")
            )
            last_ms = init_ms + off
            for i in order:
                if scn["emitted"][i] < init_ms:
                    continue  # sent before this connection had joined
                arrive = max(last_ms, scn["emitted"][i] + rec["latency"][i] + off)  # FIFO
                if arrive >= close_ms + off:
                    break
                last_ms = arrive
                timeline.append((arrive * 1000, 2, conn, "recv", server_line(i, scn["kinds"][i], scn["sent"][i])))
                delivered.add((f"{rec['name']}.Slug0.{conn}", i))
            timeline.append(((close_ms + off) * 1000, 3, conn, "close", "dropped"))
        timeline.sort(key=lambda x: (x[0], x[2], x[1]))
        w = RawWriter(str(raw_dir), rec["name"], "Slug0", rec["name"], "sim", fsync_interval=3600)
        for at, _tb, conn, kind, text in timeline:
            if kind == "open":
                w.write_open(conn, "wss://sim", at)
            elif kind == "recv":
                w.write_recv(conn, text, at)
            else:
                w.write_close(conn, text, at)
        w.close()
    return delivered

"""From counters to verdicts: coverage, redundancy and timing findings of a whole archive.

The per-file checks (`batch.py`) see one file at a time. What needs the whole picture lives here:
which minutes are empty and whether anyone was listening then, which receivers saw what share of
the messages, where the messages only one receiver saw cluster, and whose clock is off.

Clock skew. For an exact record, receive time minus server time is network delay plus the
receiver's clock offset. Nothing arrives before it was sent, so a median below `SKEW_BEHIND` means
the receiver's clock is behind. A median far above the best receiver's (`SKEW_RELATIVE`) means its
clock is ahead or its network lags; with a single receiver, an absolute `SKEW_AHEAD` stands in for
the peer. Medians need `SKEW_MIN_SAMPLES` exact records to be trusted; fewer are not judged.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from formats.canonical import BATCH_INTERVAL
from verify.coverage import (
    ChatCounts,
    Window,
    classify_empty_runs,
    empty_runs,
    in_runs,
    minute_spans,
    uncovered,
    unknown_outside,
)
from verify.findings import Finding, exit_status
from verify.tally import ChannelTally, ReceiverTally, recorder_of

SKEW_MIN_SAMPLES = 20
SKEW_BEHIND = -1.0  # s
SKEW_AHEAD = 5.0  # s
SKEW_RELATIVE = 2.0  # s
MIN_GAP = 1.0  # s; shorter spans without a connection are reconnect blips, reported only in JSON
TOP_CLUSTERS = 5


@dataclass
class ReceiverSummary:
    name: str
    recorder: str
    observations: int
    seen: int
    share: float | None  # of the messages in the minutes it was around
    sole: int
    first: float | None
    last: float | None
    delay_count: int
    delay_p05: float | None
    delay_p50: float | None
    delay_p95: float | None
    delay_min: float | None
    delay_max: float | None


@dataclass
class HourSummary:
    hour: int  # Unix seconds of the hour's start
    records: int
    messages: int
    single: int
    empty_minutes: int
    gap_minutes: int


@dataclass
class ChannelReport:
    channel: str
    tally: ChannelTally
    first_minute: int | None
    last_minute: int | None
    empty_spans: list[tuple[int, int, str]]  # runs of empty minutes of one state: quiet / gap / empty
    gaps: list[tuple[float, float]]  # spans with no connection (with raw recordings only)
    receivers: list[ReceiverSummary]
    recorder_shares: dict[str, float]
    single_clusters: list[tuple[int, int, int]]  # (start, end, messages only one receiver saw)
    hours: list[HourSummary]  # the hours holding records; a wholly empty hour lies inside `empty_spans`

    def state_of(self, minute: int) -> str | None:
        """`quiet`, `gap` or `empty` for an empty minute between the first and the last; None otherwise."""
        return span_state(self.empty_spans, minute)

    @property
    def empty_minutes(self) -> int:
        return sum((b - a) // BATCH_INTERVAL for a, b, _s in self.empty_spans)


def span_state(spans: list[tuple[int, int, str]], at: int) -> str | None:
    """The state of the (sorted, disjoint) span holding `at`, or None."""
    i = bisect.bisect_right(spans, (at, float("inf"))) - 1
    if i >= 0 and spans[i][0] <= at < spans[i][1]:
        return spans[i][2]
    return None


def spans_meeting(spans: list[tuple[int, int, str]], lo: int, hi: int) -> list[tuple[int, int, str]]:
    """The (sorted, disjoint) spans that meet [lo, hi), clipped to it."""
    i = max(0, bisect.bisect_right(spans, (lo, float("inf"))) - 1)
    out = []
    while i < len(spans) and spans[i][0] < hi:
        a, b, state = spans[i]
        if b > lo:
            out.append((max(a, lo), min(b, hi), state))
        i += 1
    return out


@dataclass
class Report:
    root: str
    channels: list[ChannelReport]
    findings: list[Finding]
    windows: list[Window] | None
    skew_reference: float | None = None  # the best receiver's median delay, what skew is judged against

    @property
    def exit_status(self) -> int:
        return exit_status(self.findings)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def natural_key(name: str) -> list[str | int]:
    """Sorts names as people count: `host.s.2` before `host.s.10`."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def _summaries(tally: ChannelTally) -> list[ReceiverSummary]:
    out = []
    for name in sorted(tally.receivers, key=natural_key):
        rt = tally.receivers[name]
        share = None
        if rt.seen and math.isfinite(rt.first) and math.isfinite(rt.last):
            lo = int(rt.first // BATCH_INTERVAL) * BATCH_INTERVAL
            hi = int(rt.last // BATCH_INTERVAL) * BATCH_INTERVAL
            around = sum(c[1] for m, c in tally.minutes.items() if lo <= m <= hi)
            share = min(1.0, rt.seen / around) if around else None
        out.append(
            ReceiverSummary(
                name,
                recorder_of(name),
                rt.observations,
                rt.seen,
                share,
                rt.sole,
                _finite(rt.first),
                _finite(rt.last),
                rt.delay_count,
                rt.delay_quantile(0.05),
                rt.delay_quantile(0.5),
                rt.delay_quantile(0.95),
                _finite(rt.delay_min) if rt.delay_count else None,
                _finite(rt.delay_max) if rt.delay_count else None,
            )
        )
    return out


def _clusters(tally: ChannelTally) -> list[tuple[int, int, int]]:
    """Runs of consecutive minutes holding messages only one receiver saw, biggest first."""
    minutes = sorted(m for m, c in tally.minutes.items() if c[2])
    runs: list[tuple[int, int, int]] = []
    for m in minutes:
        n = tally.minutes[m][2]
        if runs and runs[-1][1] == m:
            start, _end, total = runs[-1]
            runs[-1] = (start, m + BATCH_INTERVAL, total + n)
        else:
            runs.append((m, m + BATCH_INTERVAL, n))
    runs.sort(key=lambda r: (-r[2], r[0]))
    return runs[:TOP_CLUSTERS]


def iso(t: float | None) -> str | None:
    """UTC ISO 8601 with a Z, whole seconds unless there is a fraction; None stays None."""
    if t is None or not math.isfinite(t):
        return None
    try:
        moment = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    text = moment.isoformat(timespec="milliseconds" if t != int(t) else "seconds")
    return text.replace("+00:00", "Z")


def analyse_channel(
    channel: str,
    tally: ChannelTally,
    windows: list[Window] | None,
    findings: list[Finding],
    raw_chat: dict[int, int] | None = None,
) -> ChannelReport:
    """Coverage and redundancy of one channel; appends gap, missing-chat and single-receiver
    findings. `raw_chat`: the chat lines the raw recordings hold for the channel, per minute."""
    minutes = tally.minutes
    first = min(minutes) if minutes else None
    last = max(minutes) if minutes else None

    gaps: list[tuple[float, float]] = []
    known: tuple[float, float] | None = None  # the span the raw recordings speak for
    if windows is not None and math.isfinite(tally.recv_first) and math.isfinite(tally.recv_last):
        spans = [(w.start, w.end) for w in windows if w.covers(channel)]
        # Only the span the given recordings cover can show a gap: outside it, or for a channel
        # they never joined, they say nothing (another channel's or another year's recordings).
        lo = max(tally.recv_first, min((a for a, _b in spans), default=math.inf))
        hi = min(tally.recv_last, max((b for _a, b in spans), default=-math.inf))
        if not spans:
            findings.append(
                Finding("raw-elsewhere", "the raw recordings given hold no connection to this channel", channel=channel)
            )
        elif lo > hi:
            findings.append(
                Finding(
                    "raw-elsewhere",
                    f"the raw recordings given do not cover this channel's span ({iso(tally.recv_first)} to "
                    f"{iso(tally.recv_last)}): no gaps judged",
                    channel=channel,
                )
            )
        else:
            known = (lo, hi)
            gaps = uncovered(lo, hi, spans)
        for lo, hi in gaps:
            if hi - lo >= MIN_GAP:
                findings.append(
                    Finding(
                        "gap",
                        f"no recorder connected for {hi - lo:.1f} s, {iso(lo)} to {iso(hi)}",
                        channel=channel,
                        start=lo,
                        end=hi,
                    )
                )
    holes = empty_runs(minutes)
    lacking = [m for m in sorted(raw_chat or ()) if raw_chat and raw_chat[m] and in_runs(holes, m)]
    for lo, hi in minute_spans(lacking):
        lines = sum(raw_chat.get(m, 0) for m in range(lo, hi, BATCH_INTERVAL)) if raw_chat else 0
        span = f"the minute {iso(lo)}" if hi - lo == BATCH_INTERVAL else f"{iso(lo)} to {iso(hi)}"
        findings.append(
            Finding(
                "missing-chat",
                f"the raw recordings hold {lines:,} lines of chat for {span}, and the archive has no "
                "batch file there (deleted or never written): replay the raw recordings to restore it",
                channel=channel,
                start=lo,
                end=hi,
            )
        )
    real_gaps = [g for g in gaps if g[1] - g[0] >= MIN_GAP]
    empty_spans = classify_empty_runs(holes, real_gaps, windows is not None)
    if windows is not None:  # minutes the recordings say nothing about are unknown, not quiet
        empty_spans = unknown_outside(empty_spans, known)

    if tally.stale:
        findings.append(
            Finding(
                "stale",
                f"{tally.stale} records differ from a fresh replay of the raw; replay again to upgrade"
                " (the lines named in the other `stale` findings are examples)",
                channel=channel,
            )
        )
    if tally.old_merge:
        findings.append(
            Finding(
                "old-merge",
                f"{tally.old_merge} files hold combined records written before the merge wrote upstream's"
                f" numbers (ARCHIVE_FORMAT.md 5.1; e.g. {tally.old_merge_example}); wubloader nodes keep"
                " fetching them: `chat-archiver merge ROOT --full` upgrades them",
                channel=channel,
            )
        )
    if tally.lossy:
        findings.append(
            Finding(
                "lossy-merge",
                f"{tally.lossy} id-less records hold receivers that got them more than 10 s apart: readings of"
                " different messages folded by a wubloader node's merge (synced from one); they cannot be"
                " taken apart",
                channel=channel,
            )
        )
    recorders = {recorder_of(r) for r in tally.receivers}
    total = tally.messages
    if total and len(recorders) == 1:
        findings.append(
            Finding(
                "single-receiver",
                f"every message was seen by one recorder only ({next(iter(recorders))})",
                channel=channel,
            )
        )
    shares = {
        name: (n / total if total else 0.0)
        for name, n in sorted(tally.recorders.items(), key=lambda item: natural_key(item[0]))
    }

    hours: dict[int, HourSummary] = {}
    for m, counts in minutes.items():  # the hours holding records, never the span between them
        h = m - m % 3600
        hs = hours.get(h)
        if hs is None:
            hours[h] = hs = HourSummary(h, 0, 0, 0, 0, 0)
        hs.records += counts[0]
        hs.messages += counts[1]
        hs.single += counts[2]
    for h, hs in hours.items():
        for a, b, state in spans_meeting(empty_spans, h, h + 3600):
            hs.empty_minutes += (b - a) // BATCH_INTERVAL
            if state == "gap":
                hs.gap_minutes += (b - a) // BATCH_INTERVAL
    return ChannelReport(
        channel,
        tally,
        first,
        last,
        empty_spans,
        gaps,
        _summaries(tally),
        shares,
        _clusters(tally),
        [hours[h] for h in sorted(hours)],
    )


def skew_findings(tallies: dict[str, ChannelTally], findings: list[Finding]) -> float | None:
    """Judge each receiver's clock from its receive delays over all channels (module docstring).
    Returns the reference median (the best receiver's), if any receiver had enough samples."""
    merged: dict[str, ReceiverTally] = {}
    for tally in tallies.values():
        for name, rt in tally.receivers.items():
            merged.setdefault(name, ReceiverTally()).add(rt)
    medians = {
        name: med
        for name, rt in merged.items()
        if rt.delay_count >= SKEW_MIN_SAMPLES and (med := rt.delay_quantile(0.5)) is not None
    }
    plausible = [m for m in medians.values() if m >= SKEW_BEHIND]
    reference = min(plausible) if plausible else None
    for name in sorted(medians):
        med = medians[name]
        if med < SKEW_BEHIND:
            message = f"median receive delay {med:+.2f} s: received before the server sent it, clock behind"
        elif len(plausible) >= 2 and reference is not None and med - reference > SKEW_RELATIVE:
            message = (
                f"median receive delay {med:+.2f} s, {med - reference:.2f} s more than the best receiver's"
                f" ({reference:+.2f} s): clock ahead or network lagging"
            )
        elif len(plausible) < 2 and med > SKEW_AHEAD:
            message = f"median receive delay {med:+.2f} s: clock ahead or network lagging"
        else:
            continue
        findings.append(Finding("clock-skew", f"{name}: {message}"))
    return reference


def analyse(
    root: str,
    tallies: dict[str, ChannelTally],
    findings: list[Finding],
    windows: list[Window] | None,
    chat: ChatCounts | None = None,
) -> Report:
    """The whole report from per-channel counters, the file and listing findings, and raw windows
    (with the chat lines the raw recordings hold per channel and minute)."""
    findings = list(findings)
    chat = chat or {}
    channels = [analyse_channel(name, tallies[name], windows, findings, chat.get(name)) for name in sorted(tallies)]
    reference = skew_findings(tallies, findings)
    findings.sort(
        key=lambda f: (
            f.severity != "unreadable",
            f.severity != "problem",
            f.path or "",
            f.line or 0,
            f.channel or "",
            f.start or 0.0,
            f.kind,
        )
    )
    return Report(root, channels, findings, windows, reference)

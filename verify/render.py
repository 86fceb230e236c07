"""How a verify report is shown: a rich terminal report for people, one JSON document for scripts.

Both are built from the same `Report`, so they cannot disagree; the JSON schema is documented in
docs/verify-export.md (`JSON_VERSION` goes up when a field changes meaning or disappears).

The coverage heat map draws one row per hour and one cell per minute: the cell's shade says how
many records the minute holds relative to the busiest minute, and empty minutes show what they
are: a dot quiet (a recorder was connected), a red cross a gap (nobody was), `?` unknown (no raw
recordings given). Archives longer than `HEATMAP_MAX_HOURS` get one row per day and one cell per
hour instead, so the map stays readable; there a stretch of more than `HEATMAP_MAX_EMPTY_DAYS`
days without a record is one line, so a record timed centuries away draws no centuries of rows.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from verify.analysis import ChannelReport, HourSummary, Report, iso, spans_meeting
from verify.findings import NOTICE, PROBLEM, UNREADABLE
from verify.tally import RANGE_CLASSES

JSON_VERSION = 2
HEATMAP_MAX_HOURS = 72
HEATMAP_MAX_EMPTY_DAYS = 7
FINDINGS_SHOWN = 40
_SHADES = "▁▂▃▄▅▆▇█"
_EMPTY_MARK = {"quiet": ("·", "dim"), "gap": ("×", "bold red"), "empty": ("?", "yellow")}


# ---------------------------------------------------------------- JSON


def _channel_json(ch: ChannelReport) -> dict[str, Any]:
    t = ch.tally
    return {
        "files": t.files,
        "bytes": t.bytes,
        "records": t.records,
        "messages": t.messages,
        "first_minute": iso(ch.first_minute),
        "last_minute": iso(ch.last_minute),
        "minutes": [[iso(m), *t.minutes[m]] for m in sorted(t.minutes)],
        "hours": [
            {
                "hour": iso(h.hour),
                "records": h.records,
                "messages": h.messages,
                "single_receiver": h.single,
                "empty_minutes": h.empty_minutes,
                "gap_minutes": h.gap_minutes,
            }
            for h in ch.hours
        ],
        "empty_spans": [{"start": iso(a), "end": iso(b), "state": s} for a, b, s in ch.empty_spans],
        "gaps": [{"start": iso(a), "end": iso(b), "seconds": round(b - a, 3)} for a, b in ch.gaps],
        "time_ranges": {name: t.ranges.get(name, 0) for name in RANGE_CLASSES},
        "receivers": {
            r.name: {
                "recorder": r.recorder,
                "observations": r.observations,
                "messages_seen": r.seen,
                "share": r.share,
                "only_receiver": r.sole,
                "first_receive": iso(r.first),
                "last_receive": iso(r.last),
                "delay": {
                    "count": r.delay_count,
                    "min": r.delay_min,
                    "p05": r.delay_p05,
                    "p50": r.delay_p50,
                    "p95": r.delay_p95,
                    "max": r.delay_max,
                },
            }
            for r in ch.receivers
        },
        "recorder_shares": ch.recorder_shares,
        "single_receiver": {
            "messages": t.single,
            "clusters": [{"start": iso(a), "end": iso(b), "messages": n} for a, b, n in ch.single_clusters],
        },
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready dict (schema in docs/verify-export.md)."""
    status = report.exit_status
    return {
        "version": JSON_VERSION,
        "root": report.root,
        "status": {0: "healthy", 1: "problems", 2: "unreadable"}[status],
        "exit_code": status,
        "counts": {sev: sum(1 for f in report.findings if f.severity == sev) for sev in (PROBLEM, NOTICE, UNREADABLE)},
        "findings": [f.to_json() for f in report.findings],
        "channels": {ch.channel: _channel_json(ch) for ch in report.channels},
        "connections": None
        if report.windows is None
        else [
            {
                "receiver": w.receiver,
                "start": iso(w.start),
                "end": iso(w.end),
                "closed": w.closed,
                "channels": None if w.channels is None else sorted(w.channels),
            }
            for w in report.windows
        ],
        "skew_reference": report.skew_reference,
    }


# ---------------------------------------------------------------- terminal


def _n(count: int) -> str:
    """Counts for people, one way (the CLI's way): thousands separated by commas."""
    return f"{count:,}"


def _fmt_time(t: float | None) -> str:
    text = iso(t)
    return text.replace("T", " ").rstrip("Z") if text else "-"


def _fmt_delay(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _heatmap(ch: ChannelReport) -> RenderableType:
    if ch.first_minute is None or ch.last_minute is None:
        return Text("no records", style="dim")
    minutes = ch.tally.minutes
    hours = (ch.last_minute - ch.first_minute) // 3600 + 1
    text = Text()
    if hours <= HEATMAP_MAX_HOURS:
        peak = max(c[0] for c in minutes.values())
        first_hour = ch.first_minute - ch.first_minute % 3600
        text.append(
            "hour (UTC)     " + "".join(str(i // 10) if i % 10 == 0 else " " for i in range(60)) + "\n", style="dim"
        )
        for h in range(first_hour, ch.last_minute + 1, 3600):
            text.append(f"{_fmt_time(h)[:13]}  ", style="dim")
            for m in range(h, h + 3600, 60):
                _cell(text, m, minutes.get(m), peak, ch)
            text.append("\n")
    else:
        hourly = {hs.hour: hs for hs in ch.hours}
        peak = max((hs.records for hs in ch.hours), default=1) or 1
        text.append("day (UTC)   " + "".join(str(i).ljust(6) for i in range(0, 24, 6)) + "\n", style="dim")
        unknown = any(state == "empty" for _a, _b, state in ch.empty_spans)  # no raw recordings given
        days = sorted({hs.hour - hs.hour % 86400 for hs in ch.hours})  # the days holding records
        previous: int | None = None
        for day in days:
            if previous is not None and day - previous > 86400 * (HEATMAP_MAX_EMPTY_DAYS + 1):
                skipped = (day - previous) // 86400 - 1
                text.append(f"... {_n(skipped)} days without records ...\n", style="dim")
            elif previous is not None:
                for d in range(previous + 86400, day, 86400):
                    _day_row(text, d, ch, hourly=hourly, peak=peak, unknown=unknown)
            _day_row(text, day, ch, hourly=hourly, peak=peak, unknown=unknown)
            previous = day
    text.append(
        "shade: records per minute (per hour beyond 3 days); · quiet  × nobody connected  ? unknown", style="dim"
    )
    return text


def _day_row(
    text: Text, day: int, ch: ChannelReport, *, hourly: dict[int, HourSummary], peak: int, unknown: bool
) -> None:
    text.append(f"{_fmt_time(day)[:10]}  ", style="dim")
    for h in range(day, day + 86400, 3600):
        hs = hourly.get(h)
        states = {state for _a, _b, state in spans_meeting(ch.empty_spans, h, h + 3600)}
        if hs is None and not states:
            text.append(" ")  # before the first or after the last minute
        elif "gap" in states:
            text.append("×", style="bold red")
        elif hs is None:
            mark, style = _EMPTY_MARK["empty" if unknown else "quiet"]
            text.append(mark, style=style)
        else:
            text.append(_SHADES[min(7, int(8 * hs.records / peak))], style="green")
    text.append("\n")


def _cell(text: Text, minute: int, counts: list[int] | None, peak: int, ch: ChannelReport) -> None:
    if ch.first_minute is None or ch.last_minute is None or not ch.first_minute <= minute <= ch.last_minute:
        text.append(" ")
        return
    if counts is None:
        mark, style = _EMPTY_MARK[ch.state_of(minute) or "empty"]
        text.append(mark, style=style)
        return
    shade = _SHADES[min(7, int(8 * counts[0] / peak))] if peak else _SHADES[0]
    text.append(shade, style="yellow" if counts[2] and counts[1] and counts[2] * 2 > counts[1] else "green")


def _period_table(ch: ChannelReport) -> Table:
    """Counts per hour, or per day when the archive is longer than the heat map's hourly rows."""
    daily = (
        ch.first_minute is not None
        and ch.last_minute is not None
        and ((ch.last_minute - ch.first_minute) // 3600 + 1 > HEATMAP_MAX_HOURS)
    )
    rows: dict[int, list[int]] = {}
    for hs in ch.hours:
        key = hs.hour - hs.hour % 86_400 if daily else hs.hour
        row = rows.setdefault(key, [0, 0, 0, 0, 0])
        for i, n in enumerate((hs.records, hs.messages, hs.single, hs.empty_minutes, hs.gap_minutes)):
            row[i] += n
    label = "day (UTC)" if daily else "hour (UTC)"
    table = Table(title="per day" if daily else "per hour", title_justify="left", box=None, pad_edge=False)
    for col in (label, "records", "messages", "1 receiver", "empty min", "gap min"):
        table.add_column(col, justify="left" if col == label else "right")
    for key in sorted(rows):
        records, messages, single, empty, gap = rows[key]
        table.add_row(
            _fmt_time(key)[: 10 if daily else 13],
            _n(records),
            _n(messages),
            _n(single),
            _n(empty),
            Text(_n(gap), style="red" if gap else ""),
        )
    return table


def _channel_panel(ch: ChannelReport) -> Panel:
    t = ch.tally
    parts: list[RenderableType] = []
    span = f"{_fmt_time(ch.first_minute)} .. {_fmt_time(ch.last_minute)}" if ch.first_minute is not None else "-"
    parts.append(
        Text(
            f"{_n(t.files)} files, {_n(t.records)} records, {_n(t.messages)} messages with an id, "
            f"{_n(ch.empty_minutes)} empty minutes; {span} UTC"
        )
    )
    parts.append(_heatmap(ch))

    parts.append(_period_table(ch))

    if ch.gaps:
        gaps = Table(title="spans with no recorder connected", title_justify="left", box=None)
        gaps.add_column("from")
        gaps.add_column("to")
        gaps.add_column("seconds", justify="right")
        for a, b in ch.gaps:
            gaps.add_row(_fmt_time(a), _fmt_time(b), f"{b - a:,.1f}")
        parts.append(gaps)

    recv = Table(title="receivers", title_justify="left", box=None)
    # who contributed what: every receiver name the records carry (a peer's too, whatever it claims),
    # what it saw, what only it saw, and when; the receive delays in a table of their own, so each
    # fits 80 columns
    for col in ("receiver", "lines", "msgs seen", "share", "only it", "first .. last"):
        recv.add_column(col, justify="left" if col in ("receiver", "first .. last") else "right", no_wrap=True)
    delays = Table(title="receive delay (s)", title_justify="left", box=None)
    for col in ("receiver", "p05", "p50", "p95"):
        delays.add_column(col, justify="left" if col == "receiver" else "right", no_wrap=True)
    for r in ch.receivers:
        first, last = _fmt_time(r.first)[:16], _fmt_time(r.last)[:16]
        if first[:10] == last[:10]:
            last = last[11:]  # the same day: its time only
        recv.add_row(
            r.name,
            _n(r.observations),
            _n(r.seen),
            "-" if r.share is None else f"{100 * r.share:.1f}%",
            _n(r.sole),
            f"{first} .. {last}",
        )
        delays.add_row(r.name, _fmt_delay(r.delay_p05), _fmt_delay(r.delay_p50), _fmt_delay(r.delay_p95))
    parts.append(recv)
    parts.append(delays)
    if ch.recorder_shares:
        parts.append(
            Text(
                "share of messages per recorder: "
                + ", ".join(f"{name} {100 * share:.1f}%" for name, share in ch.recorder_shares.items())
            )
        )
    if t.single:
        where = "; ".join(f"{_fmt_time(a)[:16]}..{_fmt_time(b)[11:16]} ({n})" for a, b, n in ch.single_clusters)
        parts.append(Text(f"messages only one receiver saw: {_n(t.single)}; biggest clusters: {where}"))

    mix = ", ".join(f"{name} {_n(t.ranges[name])}" for name in RANGE_CLASSES if t.ranges.get(name))
    parts.append(Text(f"time ranges: {mix or '-'}"))
    return Panel(Group(*parts), title=Text(ch.channel, style="bold"), title_align="left")


def render(report: Report, console: Console) -> None:
    """Print the human report. Names from the archive (paths, channels) are printed verbatim, never
    read as markup; each finding is one line `kind  FILE:LINE: what`, so a terminal wraps it but
    no table splits a FILE:LINE in two."""
    status = report.exit_status
    verdict = {
        0: ("healthy", "bold green"),
        1: ("problems found", "bold red"),
        2: ("could not read everything", "bold red"),
    }[status]
    console.print(Text.assemble("archive ", (report.root, "bold"), ": ", verdict))
    problems = [f for f in report.findings if f.severity != NOTICE]
    notices = [f for f in report.findings if f.severity == NOTICE]
    for title, items in (("problems", problems), ("notices", notices)):
        if not items:
            continue
        style = "red" if title == "problems" else "yellow"
        console.print(Text(f"{title} ({_n(len(items))})", style="italic"))
        width = max(len(f.kind) for f in items[:FINDINGS_SHOWN])
        for f in items[:FINDINGS_SHOWN]:
            where = f"{f.where}: " if f.where else ""
            console.print(Text.assemble((f.kind.ljust(width), style), "  ", where, f.message), soft_wrap=True)
        if len(items) > FINDINGS_SHOWN:
            console.print(Text(f"... and {_n(len(items) - FINDINGS_SHOWN)} more (see --json)", style="dim"))
    for ch in report.channels:
        console.print(_channel_panel(ch))
    if report.windows is not None:
        # all on one day (the usual case): the date once in the title, times alone, so a row fits
        # 80 columns; else the open time with its date, and the end's date where it differs
        days = {_fmt_time(t)[:10] for w in report.windows for t in (w.start, w.end)}
        one_day = next(iter(days)) if len(days) == 1 else None
        title = "recorder connections" + (f" on {one_day} (UTC)" if one_day else "")
        table = Table(title=title, title_justify="left", box=None)
        for col in ("receiver", "open", "until", "closed", "channels"):
            table.add_column(col)
        for w in report.windows:
            opened, until = _fmt_time(w.start), _fmt_time(w.end)
            if until[:11] == opened[:11]:
                until = until[11:]
            if one_day:
                opened = opened[11:]
            table.add_row(
                w.receiver,
                opened,
                until,
                "yes" if w.closed else "no (ended)",
                "all" if w.channels is None else ", ".join(sorted(w.channels)),
            )
        console.print(table)

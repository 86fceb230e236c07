"""verify's clean tally by the reference way: the counters of a file whose lines raise no finding,
from the same line checks as `verify.batch.check_batch`. The compiled `scan_clean` (native/verify.c,
read through `verify.batch._compiled_tally`) is held to it by tests/test_verify_core.py; verify
itself runs the full checks on the pure path, never this."""

from __future__ import annotations

from verify.batch import _check_lines, _Reporter
from verify.tally import ChannelTally


def clean_tally_py(data: bytes, batch_time: int) -> ChannelTally | None:
    """The counters of the records of a file whose lines raise no finding at all (every line
    canonical, a record, sorted, in the file's minute, no repeated id, no negative or oversized
    range); None when any line raises one. The pure-Python reference of the compiled twin
    (`_compiled_tally`, native/verify.c)."""
    report = _Reporter("", "")
    tally = ChannelTally()
    _check_lines(data, batch_time, report, tally, None)
    return None if report.finish() else tally

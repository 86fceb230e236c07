"""verify: an archive's health at a glance.

Layout, pure to impure:
- `findings`: what can be found and how bad it is;
- `batch`: one batch file's bytes -> findings and counters (the hot path);
- `listing`: folder and file names -> findings;
- `coverage`: raw recording events -> connection windows, gaps;
- `tally`, `analysis`: counters -> coverage, redundancy and clock verdicts;
- `render`: the report as a rich terminal page or as JSON;
- `shell`: the I/O shell that lists, reads (in a process pool when it pays) and puts it together.
"""

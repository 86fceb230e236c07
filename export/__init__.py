"""export: chat for a time window, in the formats editors' tools read (issue 5).

`window` (which records: upstream's reader rule, time parsing, filters, the chunk plan) and
`formats` (records to text) are pure; `stream` is the I/O shell that reads, merges, folds and
writes chunk by chunk; `parts` spreads a long window over a process pool with the same bytes.
"""

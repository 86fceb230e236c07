"""export: chat for a time window, in the formats editors' tools read.

`window` (which records: upstream's reader rule, time parsing, filters, the chunk plan), `fields`
(what a transcript shows of a record) and `render` (records to text in each format) are pure; `stream` reads,
merges, folds and writes chunk by chunk; `parts` spreads a long window over a process pool with
the same bytes; `shell.export` is the entry point that picks between the two.
"""

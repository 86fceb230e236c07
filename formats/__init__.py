"""The two file formats every stage shares, and what reads and writes them.

- `irc`: IRC lines to messages (the IRCv3 reading, and the girc-compatible one the archive needs).
- `rawcodec`, `rawfile`: raw recordings (docs/raw-format.md): the line codec, and finding,
  grouping and reading recordings on disk. The recorder's writer lives in `recorder.rawwriter`.
- `canonical`, `store`: the archive (wubloader's chat archive): canonical bytes, batch names and
  layout, and batch files on disk (atomic, durable writes).
- `errors`: the one error hierarchy, split by blame.
- `times`: the one reading of times and durations people type (command line, URLs).

Stages import this package; it imports none of them.
"""

"""The two file formats every stage shares, and what reads and writes them.

- `irc`: IRC lines to messages (the IRCv3 reading, and the girc-compatible one the archive needs).
- `rawcodec`, `rawfile`: raw recordings (docs/raw-format.md): the line codec, and finding,
  grouping and reading recordings on disk. The recorder's writer lives in `recorder.rawwriter`.
- `canonical`, `store`: the archive (wubloader's chat archive): canonical bytes, the record's
  schema and content key, batch names and layout, and batch files on disk (listing; atomic,
  durable writes).
- `identity`: a record's message id, the one reading of what makes two records one message.
- `names`: the archive's channel, hour and batch names, as any stage checks a name from outside.
- `dialect`: what differs between Twitch and IRCv3 servers when lines are read into records.
- `errors`: the one error hierarchy, split by blame.
- `times`: the one reading of times and durations people type (command line, URLs).
- `memory`: pausing the cyclic GC while a stage builds millions of acyclic records.

Stages import this package; it imports none of them.
"""

# The one version string: `chat-archiver --version`, the `software` field of raw recordings and the
# package metadata (pyproject.toml reads it) all come from here.
__version__ = "0.1.0"

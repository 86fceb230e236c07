"""What the merge needs of a batch file line, without decoding it: the pure reference and its
compiled twin (native/merge.c).

In a canonical line (ARCHIVE_FORMAT.md section 3: sorted keys, one record per line) a merge needs
only the message's identity and the three fields it changes; everything else passes through as
bytes. `scan_line_py` (tests/reference/merge_scan.py) is the definition: it decodes the line and
checks it exactly as every reader
does (`formats.canonical.parse_batch`, `merge.core.check_parsed`), and *vouches* for it only if
the line is exactly the canonical bytes of its record and of the shape the merge's byte path handles
(receiver names and tag names without escapes, no lone surrogate, ints of at most 15 digits, no -0.0,
a time from 1970 to 9999). Then it returns a `Scanned` tuple:

    (content, a, k, mid, receivers, time, time_range, receivers_text, numbers_text)

- `content`: the line without the values of `receivers`, `time` and `time_range`
  (`line[:a] + line[b:c] + line[d:]`): equal for two lines exactly when their contents are equal;
- `a`: where the receivers object starts in the line (and in `content`), `k`: the length of what
  lies between that object's end and the time's value (`,"sender":...,"time":`), so that a merged
  line is `content[:a] + RECEIVERS + content[a:a + k] + TIME + b',"time_range":' + RANGE + content[a + k:]`;
- `mid`: the message id (`id` tag, else `msgid`, as `formats.identity.message_id`) as its JSON bytes
  between the quotes, or None;
- `receivers`: name (bytes) -> receive time; `time`, `time_range`: the numbers, as decoded;
- `receivers_text`: the receivers object's text without its braces (`"name":when,...`), and
  `numbers_text` the time's and range's (`TIME,"time_range":RANGE`): a merge that keeps them writes
  them back as they are.

Anything it does not vouch for is None, and the caller takes the whole file through the reference
path (decode, check, merge records): so errors, damage and odd files are always the pure code's.
The compiled twin reads the canonical grammar directly and must return exactly the same, which
tests/test_merge_scan.py holds over random, damaged and real lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from formats import speedups

Number = int | float
Scanned = tuple[bytes, int, int, bytes | None, dict[bytes, Number], Number, Number, bytes, bytes]

# The compiled scanner when built: a file's verdict as scan_batch_py gives it, without its tuples: the
# file's lines kept in C as offsets and numbers (`formats._native.Lines`, what merge.fastplan.fold_lines
# folds), or the number of the first line it does not vouch for. Else None, and the merge uses the
# reference path for every file (scanning in Python would cost more than it saves).
scan_file: Callable[[bytes], Any] | None = speedups.compiled("scan_file")

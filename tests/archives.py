"""Archives for tests: batch files of given records written, and read back, through the store's
real writer and the archive's real parser (the product writes bytes it has already formatted)."""

from __future__ import annotations

from typing import Any

from formats.canonical import format_batch, parse_batch
from formats.errors import InputError
from formats.store import write_batch_bytes


def write_batch(root: str, channel: str, batch_time: int, records: list[dict[str, Any]]) -> tuple[str, bool]:
    """Write `records` as the batch file of `batch_time` (see `formats.store.write_batch_bytes`)."""
    return write_batch_bytes(root, channel, batch_time, format_batch(records))


def read_batch_file(path: str) -> list[dict[str, Any]]:
    """Read and validate one batch file. InputError names the file and line of any damage."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None
    return parse_batch(data, path)

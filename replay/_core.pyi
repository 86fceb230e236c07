from collections.abc import Callable, Mapping
from typing import Any

def twitch_line(
    line: str,
    receiver: bytes,
    now: float,
    /,
) -> tuple[str, str | None, float | None, bytes, bytes] | None: ...
def lane(
    block: bytes,
    offset: int,
    last_seq: int,
    conns: dict[int, Any],
    twitch: Any,
    kept: frozenset[str],
    channels: frozenset[str] | None,
    safe: Callable[[str], bool],
    /,
) -> tuple[int, int, int, int]: ...
def batch(records: list[Mapping[str, Any]], encode: Callable[[Mapping[str, Any]], bytes], /) -> bytes | None: ...
def float_repr(x: float, /) -> str: ...

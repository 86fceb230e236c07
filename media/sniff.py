"""What kind of image some bytes are, by their magic bytes (pure).

A CDN or a peer may answer anything with any content type; what we keep as an image must start as
one of the formats browsers and TwitchDownloader render: PNG, GIF, WebP, AVIF or JPEG. This looks
only at the first bytes (it does not decode), which is what tells an image from an HTML error page,
a JSON error or a truncated answer's garbage.
"""

from __future__ import annotations

MAX_IMAGE = 16 << 20  # bytes: Twitch's largest emotes are ~1 MB animated GIFs; far above is not one


def image_kind(data: bytes) -> str | None:
    """`png`, `gif`, `webp`, `avif` or `jpg` when `data` starts as that format, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "avif"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    return None


def image_problem(data: bytes, cap: int = MAX_IMAGE) -> str | None:
    """Why `data` is not an image we keep (a short reason, used as a metric label), or None."""
    if not data:
        return "empty"
    if len(data) > cap:
        return "too-large"
    if image_kind(data) is None:
        return "not-an-image"
    return None

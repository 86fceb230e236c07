"""Loopback fakes for the media tests: real little images, and one HTTP server that plays
BetterTTV, FrankerFaceZ and 7TV (API and CDN) and Twitch's Helix, in their documented shapes.

Images are built here byte by byte (PNG with zlib, GIF with a tiny LZW writer) so a browser
really decodes them: the screenshot shows coloured squares, and an animated GIF really animates.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


def png(size: int, rgb: tuple[int, int, int], ring: tuple[int, int, int] | None = None) -> bytes:
    """A `size`x`size` PNG of one colour (with a border of another, to see it is an image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b""
    for y in range(size):
        rows += b"\x00"
        for x in range(size):
            edge = ring is not None and (x in (0, size - 1) or y in (0, size - 1))
            rows += bytes(ring if edge and ring else rgb)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def face_pixels(size: int, x: int, y: int, wink: bool = False) -> int:
    """0 outside, 1 the face, 2 an eye or the mouth: a little round face, as emotes mostly are."""
    c = (size - 1) / 2
    dx, dy = (x - c) / c, (y - c) / c
    if dx * dx + dy * dy > 0.95:
        return 0
    eye = abs(dy + 0.3) < 0.15 and 0.2 < abs(dx) < 0.5
    if wink and dx > 0:
        eye = abs(dy + 0.3) < 0.06 and 0.2 < dx < 0.55
    mouth = abs(dx) < 0.5 and abs(dy - (0.5 - 0.6 * dx * dx)) < 0.09  # a smile
    return 2 if eye or mouth else 1


def face_png(size: int, skin: tuple[int, int, int], ink: tuple[int, int, int] = (30, 30, 30)) -> bytes:
    """A round face on a transparent background (RGBA PNG)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colours = {0: (0, 0, 0, 0), 1: (*skin, 255), 2: (*ink, 255)}
    rows = b"".join(
        b"\x00" + b"".join(bytes(colours[face_pixels(size, x, y)]) for x in range(size)) for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def face_gif(size: int, skins: list[tuple[int, int, int]], delay_cs: int = 20) -> bytes:
    """A looping animated GIF of a face changing colour and winking, frame by frame."""
    palette = b"".join(bytes(c) for c in [(24, 24, 27), (0, 0, 0), (30, 30, 30), (0, 0, 0)])
    out = b"GIF89a" + struct.pack("<HHBBB", size, size, 0xF1, 0, 0) + palette
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for i, skin in enumerate(skins):
        local = b"".join(bytes(c) for c in [(24, 24, 27), skin, (30, 30, 30), (0, 0, 0)])
        pixels = [face_pixels(size, x, y, wink=i % 2 == 1) for y in range(size) for x in range(size)]
        out += b"\x21\xf9\x04\x00" + struct.pack("<H", delay_cs) + b"\x00\x00"
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, size, size, 0x81) + local + _lzw_pixels(pixels)
    return out + b"\x3b"


def _lzw_pixels(indices: list[int]) -> bytes:
    """GIF image data for palette indices (0..3) with a 2-bit minimum code size: a clear code after
    every two pixels keeps every code 3 bits wide, which any decoder reads."""
    codes, width = [], 3
    for i, index in enumerate(indices):
        if i % 2 == 0:
            codes.append(4)  # clear
        codes.append(index)
    codes.append(5)  # end of information
    bits, nbits, out = 0, 0, bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i : i + 255])]) + bytes(out[i : i + 255]) for i in range(0, len(out), 255))
    return bytes([2]) + blocks + b"\x00"


def animated_gif(size: int, colours: list[tuple[int, int, int]], delay_cs: int = 20) -> bytes:
    """A looping GIF whose frames are filled with each of `colours` (at most 4) in turn."""
    palette = b"".join(bytes(c) for c in (colours + [(0, 0, 0)] * 4)[:4])
    out = b"GIF89a" + struct.pack("<HHBBB", size, size, 0xF1, 0, 0) + palette
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for i in range(len(colours)):
        out += b"\x21\xf9\x04\x00" + struct.pack("<H", delay_cs) + b"\x00\x00"
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, size, size, 0) + _lzw_pixels([i] * (size * size))
    return out + b"\x3b"


Answer = tuple[int, bytes, str] | Callable[[BaseHTTPRequestHandler], None]


class FakeApis:
    """One loopback server; `routes[path]` (path with its query) is (status, body, content type)
    or a callable that answers itself. Anything else is 404. `requests` lists (path, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append((self.path, dict(self.headers.items())))
                answer = fake.routes.get(self.path) or fake.routes.get(urlsplit(self.path).path)
                if callable(answer):
                    answer(self)
                    return
                status, body, ctype = answer or (404, b'{"message":"not found"}', "application/json")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, path: str, doc: Any, status: int = 200) -> None:
        self.routes[path] = (status, json.dumps(doc).encode(), "application/json")

    def image(self, path: str, data: bytes, ctype: str = "image/png") -> None:
        self.routes[path] = (200, data, ctype)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""The documented nginx configuration (docs/nginx/chat-archiver.conf), run for real: a real nginx
in front of a real `serve` on loopback answers the same bytes as the server alone, streams a
window, refuses what the routes do not take, and cuts a request head that trickles in. Skipped
where nginx is not installed (.ci/run installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve.app import ChatApp
from serve.server import Running
from tests.test_serve_guards import T0, _archive

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CONF = Path(__file__).parent.parent / "docs" / "nginx" / "chat-archiver.conf"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nginx_conf(tmp: Path, listen: int, upstream: int) -> Path:
    """The documented file with its ports put in, inside the few lines a private nginx needs
    (its pid, logs and temporary files in `tmp`)."""
    site = CONF.read_text()
    assert "server 127.0.0.1:8008;" in site and "listen 80;" in site
    site = site.replace("server 127.0.0.1:8008;", f"server 127.0.0.1:{upstream};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    temp = "\n".join(f"{kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{temp}\n{site}\n}}\n"
    )
    return conf


class _Nginx:
    def __init__(self, tmp: Path, upstream: int) -> None:
        self.port = _free_port()
        conf = _nginx_conf(tmp, self.port, upstream)
        assert NGINX is not None
        check = subprocess.run(
            [NGINX, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            check=False,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not start: " + (tmp / "error.log").read_text())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(nginx's URL, the server's own URL) over one archive."""
    archive = tmp_path / "archive"
    _archive(archive, minutes=3, per_minute=2000)
    (tmp_path / "nginx").mkdir()
    with Running(ChatApp(str(archive)), per_address=0) as server:
        nginx = _Nginx(tmp_path / "nginx", int(server.server.effective_port))
        try:
            yield nginx.url, server.url
        finally:
            nginx.close()


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status), response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_nginx_answers_the_same_bytes_as_the_server(behind_nginx: tuple[str, str]) -> None:
    proxy, direct = behind_nginx
    for path in (
        "/files",
        "/files/big/chat",
        f"/big/chat.json?start={T0}&end={T0 + 180}",
        f"/big/chat.jsonl?start={T0}&end={T0 + 180}",
        "/big/chat.json?start=1&end=99999",
        "/files/..%2fetc",
    ):
        via, alone = _get(proxy + path), _get(direct + path)
        assert via[0] == alone[0], path
        assert via[1] == alone[1], path
        assert via[2].get("Access-Control-Allow-Origin") == alone[2].get("Access-Control-Allow-Origin"), path
    status, body, _ = _get(f"{proxy}/big/chat.jsonl?start={T0}&end={T0 + 180}")
    assert status == 200 and body.count(b"\n") == 6000


def test_nginx_refuses_other_methods_and_cuts_a_trickling_head(behind_nginx: tuple[str, str]) -> None:
    proxy, _direct = behind_nginx
    request = urllib.request.Request(proxy + "/files", method="POST", data=b"x")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("POST answered")
    except urllib.error.HTTPError as e:
        assert e.code == 403
    # a head sent a byte every 0.5 s is cut at client_header_timeout (10 s), not kept alive by each byte
    port = int(proxy.rsplit(":", 1)[1])
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = b"GET /files HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n" * 100
        closed = False
        for byte in head:  # at most 30 s of bytes: the cut comes well before
            try:
                sock.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            if time.monotonic() - began > 30:
                break
    assert closed and time.monotonic() - began < 20

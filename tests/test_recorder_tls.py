"""wss:// certificates are verified: an untrusted one is refused (and retried, loudly); a CA given
with --ca-file is trusted. The certificate is made on the spot with the openssl command."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from twitchlike import (
    Recording,
    RunningRecorder,
    ServerConn,
    TwitchLikeServer,
    caught_up,
    chat_line,
    fast_config,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is needed to make a certificate"),
]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _script(conn: ServerConn) -> None:
    assert conn.wait_joined(["alpha"])
    conn.send(*(chat_line(i, "alpha") for i in range(10)))


def test_an_untrusted_certificate_is_refused_and_said(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    with (
        TwitchLikeServer(_script, tls=_context(*certificate)) as server,
        RunningRecorder(fast_config(server.url, str(tmp_path), channels=("alpha",))) as rec,
    ):
        assert wait_until(lambda: sum("cannot connect" in m for _l, m in rec.logs) >= 2, 20), rec.logs
        rec.stop()
    assert any("TLS certificate not trusted" in m for _l, m in rec.logs), rec.logs
    assert Recording(str(tmp_path)).events == []


def test_a_ca_file_makes_the_certificate_trusted(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _key = certificate
    with TwitchLikeServer(_script, tls=_context(*certificate)) as server:
        config = fast_config(server.url, str(tmp_path), channels=("alpha",), sslopt={"ca_certs": str(cert)})
        with RunningRecorder(config) as rec:
            assert server.wait_conns(1)
            assert wait_until(lambda: caught_up(str(tmp_path), server.conns[0], 10 + 11)), rec.logs
            rec.stop()
    assert Recording(str(tmp_path)).of("open")[0].text.startswith("wss://127.0.0.1:")

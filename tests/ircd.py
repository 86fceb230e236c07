"""A real InspIRCd 3 on loopback for tests, and a tiny plain-TCP IRC client to talk to it.

The config is written into a temporary folder: one plain client port, one WebSocket port (the
`websocket` and `sha1` modules, any Origin), the IRCv3 modules for server-time, msgid and client
tags, no DNS wait, and limits loose enough that a test client can talk fast.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from demo.twitchlike import free_port

INSPIRCD = shutil.which("inspircd") or ("/usr/sbin/inspircd" if Path("/usr/sbin/inspircd").exists() else None)

_CONFIG = """\
<config format="xml">
<server name="irc.test" description="chat-archiver test server" network="TestNet">
<admin name="Test" nick="test" email="test@example.invalid">
<bind address="127.0.0.1" port="{irc_port}" type="clients">
<bind address="127.0.0.1" port="{ws_port}" type="clients" hook="websocket">
<module name="websocket">
<module name="sha1">
<module name="cap">
<module name="ircv3">
<module name="ircv3_servertime">
<module name="ircv3_msgid">
<module name="ircv3_ctctags">
<wsorigin allow="*">
<dns server="127.0.0.1" timeout="1">
<connect allow="*" timeout="60" pingfreq="120" hardsendq="10M" softsendq="1M" recvq="1M"
         threshold="10000" commandrate="1000000" fakelag="no" localmax="1000" globalmax="1000"
         maxchans="100" resolvehostnames="no" useident="no">
<channels users="100" opers="100">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd.log">
<files motd="{dir}/motd.txt">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" pingwarning="15">
<security userstats="Pu" flatlinks="no" hidesplits="no" hideulines="no" hidebans="no" maxtargets="20">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxquit="255" maxtopic="307"
        maxkick="255" maxreal="128" maxaway="200">
"""


class InspIRCd:
    """`with InspIRCd(tmp) as ircd:` runs the server until the block ends."""

    def __init__(self, folder: Path) -> None:
        assert INSPIRCD is not None
        self.folder = folder
        self.irc_port = free_port()
        self.ws_port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "motd.txt").write_text("test server\n")
        self.config = folder / "inspircd.conf"
        self.config.write_text(_CONFIG.format(irc_port=self.irc_port, ws_port=self.ws_port, dir=folder))
        self._out = open(folder / "inspircd.out", "wb")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [INSPIRCD, "--config", str(self.config), "--nofork", "--runasroot"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )

    def output(self) -> str:
        return (self.folder / "inspircd.out").read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"inspircd exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.ws_port), timeout=1),
                    socket.create_connection(("127.0.0.1", self.irc_port), timeout=1),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"inspircd did not open its ports:\n{self.output()}")

    def __enter__(self) -> InspIRCd:
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


class IrcClient:
    """A plain IRC client over TCP: registers, then sends what the test says; keeps what it gets."""

    def __init__(self, port: int, nick: str) -> None:
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"irc-{nick}", daemon=True)
        self._reader.start()
        self.send(f"NICK {nick}", f"USER {nick} 0 * :test client")
        assert self.wait_for(lambda line: f" 001 {nick} " in line), self.lines

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += data
            *complete, buf = buf.split(b"\r\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace")
                if line.startswith("PING "):
                    self.send("PONG " + line[5:])
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def wait_for(self, predicate: object, timeout: float = 15.0) -> bool:
        check = predicate  # a callable taking one line

        def seen() -> bool:
            return any(check(line) for line in self.lines)  # type: ignore[operator]

        with self._cond:
            return self._cond.wait_for(seen, timeout)

    def close(self) -> None:
        try:
            self.send("QUIT :bye")
            self.wait_for(lambda line: line.startswith("ERROR"), 5)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(5)

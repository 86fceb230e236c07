"""The media keeper and `chat-archiver media`: emotes (and links) an archive names, fetched from a
fake CDN on loopback into wubloader's layout, each once, never blocking the caller."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from media import layout
from media.keeper import Keeper, Options
from media.workers import Background, MediaStats
from tests.archives import write_batch
from tests.fakecdn import FakeCDN, emote_bytes

pytestmark = pytest.mark.integration

MINUTE = 1_700_000_040


def message(i: int, emotes: str, text: str = "hi") -> dict[str, Any]:
    return {
        "command": "PRIVMSG",
        "params": ["#alpha", text],
        "sender": "u",
        "user": "u",
        "host": "u.tmi.twitch.tv",
        "tags": {"emotes": emotes, "id": f"m{i}"},
        "receivers": {"host1.Ab3dE.0": MINUTE + i / 10},
        "time": MINUTE + i / 10,
        "time_range": 0,
    }


@pytest.fixture
def cdn() -> Iterator[FakeCDN]:
    with FakeCDN() as server:
        yield server


def opts(cdn: FakeCDN, **kw: Any) -> Options:
    return Options(twitch_cdn=cdn.url, allow_private=True, workers=4, **kw)


def test_every_variant_fetched_once_however_many_messages(tmp_path: Any, cdn: FakeCDN) -> None:
    with Keeper(str(tmp_path), opts(cdn)) as keeper:
        for i in range(300):
            keeper.offer_record(message(i, f"25:0-4/anim1:6-10/{100 + i % 3}:12-14"))
        assert keeper.drain(20)
    hits = cdn.emote_hits()
    assert len(hits) == 5 * 6 and set(hits.values()) == {1}, hits
    for emote_id in ("25", "anim1", "100", "101", "102"):
        for variant in layout.VARIANTS:
            theme, scale = variant.split("-")
            with open(os.path.join(str(tmp_path), "emotes", emote_id, variant), "rb") as f:
                assert f.read() == emote_bytes(emote_id, theme, scale)


def test_a_name_on_disk_is_never_fetched_again(tmp_path: Any, cdn: FakeCDN) -> None:
    with Keeper(str(tmp_path), opts(cdn)) as keeper:
        keeper.offer_record(message(1, "25:0-1"))
        assert keeper.drain(20)
    with Keeper(str(tmp_path), opts(cdn)) as keeper:  # a new process: only the disk knows
        keeper.offer_record(message(2, "25:0-1"))
        assert keeper.drain(20)
    assert sum(cdn.emote_hits().values()) == 6


def test_an_html_answer_is_not_kept_as_an_emote(tmp_path: Any, cdn: FakeCDN) -> None:
    """A mirror answering an HTML page (with an image type) for an emote keeps nothing."""
    stats = MediaStats()
    with Keeper(str(tmp_path), Options(twitch_cdn=cdn.url + "/lying-type?", allow_private=True), stats=stats) as k:
        k.offer_record(message(1, "25:0-1"))
        assert k.drain(20)
    assert not os.path.exists(os.path.join(str(tmp_path), "emotes"))
    assert stats.refusals[("emote", "not-an-image")] >= 1


def test_a_missing_emote_is_counted_and_kept_out(tmp_path: Any, cdn: FakeCDN) -> None:
    stats = MediaStats()
    with Keeper(str(tmp_path), opts(cdn), stats=stats) as keeper:
        keeper.offer_record(message(1, "missing7:0-1"))
        assert keeper.drain(20)
    assert stats.refusals[("emote", "http-4xx")] == 1
    assert not os.path.exists(os.path.join(str(tmp_path), "emotes", "missing7"))


def test_private_addresses_refused_by_default(tmp_path: Any, cdn: FakeCDN) -> None:
    stats = MediaStats()
    with Keeper(str(tmp_path), Options(twitch_cdn=cdn.url), stats=stats) as keeper:
        keeper.offer_record(message(1, "25:0-1"))
        assert keeper.drain(20)
    assert stats.refusals == {("emote", "private-address"): 1}
    assert sum(cdn.emote_hits().values()) == 0


def test_offer_never_blocks_while_the_cdn_is_slow(tmp_path: Any, cdn: FakeCDN) -> None:
    """A full queue drops (and counts); the caller's time does not depend on the CDN's."""
    cdn.mode, cdn.delay = "slow", 2.0
    stats = MediaStats()
    with Keeper(str(tmp_path), opts(cdn, queue_size=4), stats=stats) as keeper:
        started = time.monotonic()
        for i in range(2000):
            keeper.offer_record(message(i, f"{i}:0-1"))
        assert time.monotonic() - started < 1.5  # 2000 emotes x 6 variants x 2 s, were it to wait
        cdn.mode = "ok"
        keeper.drain(30)
    assert stats.offers[("emote", "dropped")] > 1900


def test_background_coalesces_and_backs_off() -> None:
    gate = threading.Event()
    calls: list[str] = []

    def handle(key: str) -> None:
        calls.append(key)
        gate.wait(5)
        if key == "bad":
            raise OSError("no")

    now = [0.0]
    bg = Background("t", handle, MediaStats(), workers=1, queue_size=10, retry_after=60, clock=lambda: now[0])
    assert bg.offer("a") == "queued"
    assert bg.offer("a") == "coalesced"
    assert bg.offer("bad") == "queued"
    gate.set()
    assert bg.drain(5)
    assert bg.offer("a") == "done"
    assert bg.offer("bad") == "backoff"
    now[0] = 61
    assert bg.offer("bad") == "queued"
    assert bg.drain(5)
    bg.close()
    assert calls == ["a", "bad", "bad"]


def resolve(host: str, port: int) -> list[str]:
    """Links need a name with a dot (an IP address is not a link): cdn.test is the fake CDN."""
    return ["127.0.0.1"]


def test_links_in_wubloaders_layout(tmp_path: Any, cdn: FakeCDN) -> None:
    url = f"http://cdn.test:{cdn.port}/image.png"
    stats = MediaStats()
    with Keeper(str(tmp_path), opts(cdn, links=True, fetched_by="hostX"), stats=stats, resolve=resolve) as keeper:
        keeper.offer_record(message(1, "", f"look {url} and cdn.test:{cdn.port}/html-page 1.5/10 fart.wav"))
        assert keeper.drain(20)
    folder, name, meta_name = layout.media_names(url, b"", "")[0], None, None
    files = sorted(os.listdir(os.path.join(str(tmp_path), folder)))
    assert len(files) == 2 and files[1].endswith(".png") and files[0].endswith(".metadata.json")
    with open(os.path.join(str(tmp_path), folder, files[1]), "rb") as f:
        body = f.read()
    assert files[1] == layout.b64_hash(body) + ".png"
    with open(os.path.join(str(tmp_path), folder, files[0]), "rb") as f:
        meta = json.load(f)
    assert meta["url"] == url and meta["filename"] == files[1] and meta["redirects"] == []
    assert meta["content_type"] == "image/png" and meta["fetched_by"] == "hostX"
    assert stats.refusals[("link", "content-type")] == 1  # the html page
    assert sum(cdn.hits.values()) == 2  # 1.5/10 and fart.wav are not links
    del name, meta_name


def test_a_4xx_link_is_retried_without_trailing_punctuation(tmp_path: Any, cdn: FakeCDN) -> None:
    with Keeper(str(tmp_path), opts(cdn, links=True), resolve=resolve) as keeper:
        keeper.offer_record(message(1, "", f"(see cdn.test:{cdn.port}/image.png)"))
        assert keeper.drain(20)
    assert cdn.hits["/image.png)"] == 1 and cdn.hits["/image.png"] == 1
    assert os.listdir(os.path.join(str(tmp_path), layout.media_names(f"cdn.test:{cdn.port}/image.png", b"", "")[0]))


def test_media_command_fills_in_an_archive(tmp_path: Any, cdn: FakeCDN) -> None:
    root = str(tmp_path / "archive")
    write_batch(root, "alpha", MINUTE, [message(i, f"{i % 4}:0-1") for i in range(40)])
    write_batch(root, "beta", MINUTE, [message(1, "77:0-1")])
    args = ["media", root, "--twitch-cdn", cdn.url, "--allow-private-addresses", "-c", "alpha", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "--allow-private-addresses" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["fetches"] == {"emote/ok": 24} and summary["files_written"] == {"emote": 24}
    assert sorted(os.listdir(os.path.join(root, "emotes"))) == ["0", "1", "2", "3"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads(again.stdout)["fetches"] == {}


def test_media_command_window_and_errors(tmp_path: Any, cdn: FakeCDN) -> None:
    root = str(tmp_path / "archive")
    write_batch(root, "alpha", MINUTE, [message(1, "5:0-1")])
    base = ["media", root, "--twitch-cdn", cdn.url, "--allow-private-addresses"]
    result = CliRunner().invoke(app, [*base, "--since", "2030-01-01T00:00Z"])
    assert result.exit_code == 0 and not cdn.emote_hits()
    assert CliRunner().invoke(app, [*base, "--no-emotes"]).exit_code == 0 and not cdn.emote_hits()
    assert CliRunner().invoke(app, [*base, "-c", "nosuch"]).exit_code == 2
    assert CliRunner().invoke(app, ["media", str(tmp_path / "nope")]).exit_code == 2
    assert CliRunner().invoke(app, [*base, "--twitch-cdn", "ftp://x"]).exit_code == 2
    cdn.mode = "down"
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 1


def test_background_remembers_a_bounded_number_of_keys() -> None:
    calls: list[str] = []
    bg = Background("t", calls.append, MediaStats(), workers=1, remember=2)
    for key in ("a", "b", "c"):
        bg.offer(key)
        assert bg.drain(5)
    assert bg.offer("c") == "done" and bg.offer("b") == "done"
    assert bg.offer("a") == "queued"  # forgotten: handed to `handle` again, which looks at the disk
    assert bg.drain(5)
    bg.close()
    assert calls == ["a", "b", "c", "a"]


def test_what_may_pass_is_retried_by_itself_with_a_growing_wait() -> None:
    from media.fetch import Failed

    tries: list[str] = []

    def handle(key: str) -> None:
        tries.append(key)
        if key == "down":
            raise Failed("http-status", "503", retryable=True, status=503)
        raise Failed("http-4xx", "404", status=404)

    now = [0.0]
    bg = Background("t", handle, MediaStats(), workers=1, retry_after=10, clock=lambda: now[0])
    bg.offer("down")
    bg.offer("gone")
    assert bg.drain(5)
    assert bg.retry_due() == 0  # the wait is not over
    now[0] = 10
    assert bg.retry_due() == 1 and bg.drain(5)  # "down" again; "gone" (a 404) waits for an offer
    now[0] = 25
    assert bg.retry_due() == 0  # two failures in a row: 20 s from the last
    now[0] = 30
    assert bg.retry_due() == 1 and bg.drain(5)
    bg.close()
    assert tries == ["down", "gone", "down", "down"]


def test_an_unexpected_error_is_logged_with_its_traceback() -> None:
    """A bug in a handler does not stop the worker, and its traceback is in the log."""
    lines: list[str] = []

    def handle(key: str) -> None:
        raise KeyError(key)

    bg = Background("t", handle, MediaStats(), workers=1, log=lines.append)
    bg.offer("k1")
    assert bg.drain(30)
    bg.close()
    assert len(lines) == 1 and "unexpected KeyError" in lines[0]
    assert "Traceback (most recent call last)" in lines[0] and "in handle" in lines[0]

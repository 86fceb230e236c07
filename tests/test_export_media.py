"""The exports show the emotes offline: an archive with Twitch emotes on disk (wubloader's
layout), third-party snapshots and a badge snapshot, exported with the CLI as a user would.

- html: each image once in the page's table, spans hand-computed, third-party words by the
  snapshot in force at each message's time, a missing image leaves the word; then in headless
  Chromium: the images decode and show, the animated GIF animates, nothing else loads
  (a screenshot in test-artifacts/ and docs/);
- twitchdownloader: read by a model of TwitchDownloader's own reader (tests/tdreader.py), with
  hand-checked fragments, offsets and embedded images; any archive record keeps the file readable.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples
from typer.testing import CliRunner

from chat_archiver.cli import app
from export.emotes import ChatImages
from export.twitchdownloader import TwitchDownloaderRenderer, image_size
from formats.canonical import batch_time_of
from media.badges import Badge, BadgeSnapshot, write_badges
from media.snapshots import write_snapshot
from media.store import MediaStore
from media.thirdparty import GLOBAL, Emote, Snapshot
from tests.archives import write_batch
from tests.mediafakes import animated_gif, face_gif, face_png, png
from tests.strategies import PLAY_START, archive_records, play_message
from tests.tdreader import ReaderError, read_chat_root
from tests.test_player_browser import ARTIFACTS, needs_chromium, open_page, script_json, start_browser

S = PLAY_START
ROOT_DIR = Path(__file__).parent.parent
KAPPA = face_png(28, (190, 190, 200))
CATJAM = face_gif(28, [(255, 90, 90), (90, 140, 255)], delay_cs=10)
CATJAM_LATER = face_png(28, (40, 200, 220))
PEPED = face_png(28, (90, 200, 90))
EZ = face_png(28, (240, 200, 60))
TF = face_png(28, (230, 140, 60))
SEVENTV_CATJAM = face_png(28, (255, 0, 255))  # shadowed by the channel's BetterTTV catJAM
MOD = png(18, (0, 173, 3), (255, 255, 255))


def records() -> list[dict[str, Any]]:
    return [
        play_message(
            0,
            S + 5,
            "alice",
            "hi Kappa catJAM",
            emotes="25:3-7",
            badges="moderator/1,subscriber/12",
            **{"room-id": "42"},
        ),
        play_message(1, S + 10, "bob", "pepeD pepeD EZ :tf:"),
        play_message(2, S + 20, "carol", "\x01ACTION waves Kappa\x01", emotes="25:6-10"),
        play_message(3, S + 30, "dave", "gone OMEGALUL"),
        play_message(4, S + 35, "erin", "catJAM again"),
        play_message(5, S + 40, "frank", "\U0001f449 <3 Kappa", emotes="483:2-3/25:5-9"),
    ]


def build_archive(root: Path) -> MediaStore:
    recs = records()
    for minute in sorted({batch_time_of(r["time"]) for r in recs}):
        write_batch(str(root), "chan", minute, [r for r in recs if batch_time_of(r["time"]) == minute])
    os.makedirs(root / "emotes" / "25")
    (root / "emotes" / "25" / "dark-2.0").write_bytes(KAPPA)  # 483 (<3) is not on disk: stays a word
    store = MediaStore(str(root))

    def snap(provider: str, scope: str, t: float, *emotes: tuple[str, str, bytes | None]) -> None:
        kept = tuple(
            Emote(provider, eid, word, data is CATJAM, store.put_image(data) if data else None)
            for eid, word, data in emotes
        )
        write_snapshot(str(root), Snapshot(provider, scope, t, kept))

    snap("bttv", "chan", S - 100, ("b1", "catJAM", CATJAM), ("b9", "OMEGALUL", None))  # never fetched
    snap("bttv", "chan", S + 25, ("b2", "catJAM", CATJAM_LATER), ("b9", "OMEGALUL", None))  # catJAM swapped
    snap("ffz", "chan", S - 100, ("720507", "pepeD", PEPED))
    snap("7tv", "chan", S - 100, ("s1", "catJAM", SEVENTV_CATJAM))
    snap("7tv", GLOBAL, S - 100, ("s2", "EZ", EZ))
    snap("bttv", GLOBAL, S - 100, ("b3", ":tf:", TF))
    write_badges(
        str(root), BadgeSnapshot(GLOBAL, S - 100, (Badge("moderator", "1", "Moderator", "u", store.put_image(MOD)),))
    )
    return store


def uri(data: bytes, kind: str) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media-export") / "archive"
    build_archive(root)
    return root


def export(root: Path, fmt: str, out: Path, *extra: str) -> None:
    args = ["export", str(root), "chan", "--since", str(S), "--until", str(S + 60), "--format", fmt, "--out", str(out)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output


# --- html ----------------------------------------------------------------------------------------


def test_the_page_embeds_each_image_once_and_spans_by_hand(archive: Path, tmp_path: Path) -> None:
    export(archive, "html", tmp_path / "chat.html")
    page = (tmp_path / "chat.html").read_text()
    images = script_json(page, "chat-images")
    rows = [r for r in script_json(page, "chat-rows") if not isinstance(r[0], str)]
    e = images["e"]
    assert e == [
        uri(MOD, "png"),  # alice's badge, resolved with her first row
        uri(KAPPA, "png"),
        uri(CATJAM, "gif"),
        uri(PEPED, "png"),
        uri(EZ, "png"),
        uri(TF, "png"),
        uri(CATJAM_LATER, "png"),
    ]
    assert images["b"] == {"moderator/1": 0}  # subscriber/12 has no snapshot: text
    spans = [r[6] if len(r) > 6 else [] for r in rows]
    assert spans == [
        [[3, 8, 1], [9, 15, 2]],  # hi Kappa catJAM: the channel's BetterTTV catJAM, not 7TV's
        [[0, 5, 3], [6, 11, 3], [12, 14, 4], [15, 19, 5]],  # pepeD pepeD EZ :tf:
        [[6, 11, 1]],  # the action "waves Kappa"
        [],  # gone OMEGALUL: its image was never fetched, a word
        [[0, 6, 6]],  # catJAM again, after the set changed at +25 s
        [[5, 10, 1]],  # emoji <3 Kappa: <3's image is not on disk, a word; code points
    ]
    assert page.count("data:image/") == len(e) + page.count("data:image/(")  # each image once
    assert "img-src data:;" in page and "https:" not in page and "http:" not in page


def test_no_images_keeps_the_words(archive: Path, tmp_path: Path) -> None:
    export(archive, "html", tmp_path / "chat.html", "--no-images")
    page = (tmp_path / "chat.html").read_text()
    assert script_json(page, "chat-images") == {"e": [], "b": {}}
    assert all(len(r) <= 6 for r in script_json(page, "chat-rows"))


@pytest.mark.integration
@needs_chromium
def test_the_page_shows_the_images_in_chromium(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "chat.html"
    export(archive, "html", out)
    browser = start_browser(900, 420)
    try:
        open_page(browser, out.as_uri() + "#t=60")
        shown = browser.execute_script("""
            return Array.from(document.querySelectorAll('#rows img')).map(function (i) {
                return [i.className, i.alt, i.complete && i.naturalWidth > 0, i.getBoundingClientRect().height]; });""")
        assert [s[:3] for s in shown] == [
            ["badge-img", "moderator", True],
            ["emote", "Kappa", True],
            ["emote", "catJAM", True],
            ["emote", "pepeD", True],
            ["emote", "pepeD", True],
            ["emote", "EZ", True],
            ["emote", ":tf:", True],
            ["emote", "Kappa", True],
            ["emote", "catJAM", True],
            ["emote", "Kappa", True],
        ]
        assert all(s[3] > 10 for s in shown)  # laid out at a line's height, not collapsed
        texts = browser.execute_script(
            "return Array.from(document.querySelectorAll('#rows .body')).map(b => b.textContent)"
        )
        assert ": gone OMEGALUL" in texts and any("<3" in t for t in texts)  # missing images stay words
        # the animated GIF animates: its pictures at moments 50 ms apart differ, a still PNG's do not
        # (a canvas cannot tell: drawImage draws an animation's first frame, by the HTML standard)
        from selenium.webdriver.common.by import By

        def pictures(alt: str, enough: int, seconds: float) -> set[bytes]:
            """Screenshots of the image until `enough` differ, for at most `seconds`. The pauses vary: a
            screenshot under load can take about one animation cycle (2 frames of 100 ms), and
            shots one cycle apart all catch the same frame."""
            element = browser.find_elements(By.CSS_SELECTOR, f'#rows img.emote[alt="{alt}"]')[0]
            seen: set[bytes] = set()
            deadline = time.monotonic() + seconds
            for pause in itertools.cycle((0.03, 0.07, 0.05, 0.11)):
                seen.add(element.screenshot_as_png)
                if len(seen) >= enough or time.monotonic() > deadline:
                    return seen
                time.sleep(pause)
            raise AssertionError("unreachable")

        assert len(pictures("catJAM", 2, 5.0)) >= 2
        assert len(pictures("pepeD", 2, 0.6)) == 1  # a still picture: every shot the same
        resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        assert resources == []  # nothing loaded from anywhere
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "player-emotes.png"))
        assert (ARTIFACTS / "player-emotes.png").stat().st_size > 1000
        if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
            shutil.copy(ARTIFACTS / "player-emotes.png", ROOT_DIR / "docs" / "player-emotes.png")
    finally:
        browser.quit()


# --- twitchdownloader ----------------------------------------------------------------------------


def test_twitchdownloader_file_reads_as_twitchdownloader_reads_it(archive: Path, tmp_path: Path) -> None:
    export(archive, "twitchdownloader", tmp_path / "chat.json")
    doc = json.loads((tmp_path / "chat.json").read_text())
    root = read_chat_root(doc)
    assert root["FileInfo"]["Version"] == {"Major": 1, "Minor": 3, "Patch": 1}
    assert root["streamer"] == {"name": "chan", "login": "chan", "id": 42}
    assert root["video"]["start"] == 0.0 and root["video"]["end"] == 60.0
    assert root["video"]["created_at"] == "2023-11-14T22:13:20.000Z"  # S
    comments = root["comments"]
    assert [c["content_offset_seconds"] for c in comments] == [5.0, 10.0, 20.0, 30.0, 35.0, 40.0]
    first = comments[0]
    assert first["_id"] == "m0" and first["created_at"] == "2023-11-14T22:13:25.000Z"
    assert first["commenter"]["name"] == "alice" and first["commenter"]["display_name"] == "Alice"
    assert first["message"]["body"] == "hi Kappa catJAM"
    assert first["message"]["fragments"] == [
        {"text": "hi ", "emoticon": None},
        {"text": "Kappa", "emoticon": {"emoticon_id": "25"}},
        {"text": " catJAM", "emoticon": None},  # third-party: found by word by the renderer
    ]
    assert first["message"]["emoticons"] == [{"_id": "25", "begin": 3, "end": 7}]
    assert first["message"]["user_badges"] == [
        {"_id": "moderator", "version": "1"},
        {"_id": "subscriber", "version": "12"},
    ]
    assert comments[2]["message"]["body"] == "waves Kappa"
    assert comments[5]["message"]["fragments"][0] == {"text": "\U0001f449 <3 ", "emoticon": None}
    assert comments[5]["message"]["fragments"][1] == {"text": "Kappa", "emoticon": {"emoticon_id": "25"}}
    embedded = root["embeddedData"]
    assert [(e["id"], e["name"], e["data"], e["imageScale"], e["width"]) for e in embedded["firstParty"]] == [
        ("25", "Kappa", KAPPA, 2, 28)
    ]
    assert [(e["name"], e["data"]) for e in embedded["thirdParty"]] == [
        ("catJAM", CATJAM),  # the first image the word stood for in the window (one per word there)
        ("pepeD", PEPED),
        ("EZ", EZ),
        (":tf:", TF),
    ]
    assert embedded["twitchBadges"] == [
        {"name": "moderator", "versions": {"1": {"title": "Moderator", "description": "", "bytes": MOD}}}
    ]
    assert embedded["twitchBits"] == []


def test_the_reader_model_refuses_what_the_real_reader_refuses() -> None:
    """The model has teeth: the mistakes a writer could make, each refused as System.Text.Json would."""
    good = {
        "streamer": {"name": "c", "id": 1},
        "comments": [{"content_offset_seconds": 1.5, "message": {"bits_spent": 0}}],
    }
    read_chat_root(good)
    for bad in (
        {"streamer": {"id": "12a"}},  # an int from a non-numeric string
        {"streamer": {"id": 2**31}},  # over 32 bits
        {"streamer": {"id": None}},  # null for a value type
        {"comments": [{"content_offset_seconds": None}]},
        {"comments": [{"created_at": "14/11/2023"}]},
        {"comments": [{"message": {"bits_spent": 1.5}}]},
        {"comments": [{"message": {"body": 5}}]},  # a number for a string
        {
            "FileInfo": {"Version": {"Major": 1, "Minor": 3, "Patch": 1}},
            "embeddedData": {"firstParty": [{"data": "!!"}]},
        },
        {
            "FileInfo": {"Version": {"Major": 1, "Minor": 3}},
            "embeddedData": {"twitchBadges": [{"versions": {"1": "AAAA"}}]},
        },
        {"comments": {"not": "a list"}},
    ):
        with pytest.raises(ReaderError):
            read_chat_root(bad)


@settings(max_examples=examples(1))
@given(st.lists(archive_records(), max_size=6), st.sampled_from(["", "25:0-0", "x:1-2/25:0-3,5-6"]))
def test_any_archive_record_keeps_the_file_readable(recs: list[dict[str, Any]], emotes: str) -> None:
    images = ChatImages.of("chan", [], twitch=lambda _id: KAPPA)
    renderer = TwitchDownloaderRenderer(S, S + 60, "#chan", "chan", images)
    for r in recs:
        if isinstance(r.get("tags"), dict):
            r["tags"]["emotes"] = emotes
    text = renderer.begin() + "".join(renderer.add(r) for r in recs) + renderer.end()
    doc = json.loads(text)
    read_chat_root(doc)
    shown = [r for r in recs if r["command"] in ("PRIVMSG", "USERNOTICE") and isinstance(r["time"], int | float)]
    assert len(doc["comments"]) <= len(shown)


def test_image_sizes_from_headers() -> None:
    assert image_size(png(28, (0, 0, 0))) == (28, 28)
    assert image_size(animated_gif(12, [(0, 0, 0)])) == (12, 12)
    vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f" + ((27 | (27 << 14)).to_bytes(4, "little"))
    assert image_size(vp8l) == (28, 28)
    assert image_size(b"nothing") == (0, 0)
    assert re.fullmatch(r"\d+", "1")


@settings(max_examples=examples(1))
@given(
    st.lists(archive_records(), max_size=6),
    st.lists(st.sampled_from(["25:0-4", "25:3-7,9-13", "x:0-1", "25:5-2", "25:0-99", "/", ":", "25:a-b"]), max_size=3),
)
def test_any_record_gives_spans_inside_its_text(recs: list[dict[str, Any]], tags: list[str]) -> None:
    """Hostile tags and texts: the page's spans always fit the shown text, never overlap, and
    name an image of the table."""
    from export.html import HtmlRenderer

    snaps = [Snapshot("bttv", "chan", 0.0, (Emote("bttv", "b1", "catJAM", True, "a" * 64 + ".gif"),))]
    images = ChatImages.of("chan", snaps, twitch=lambda _id: KAPPA, read_image=lambda _name: CATJAM)
    for r, tag in zip(recs, tags, strict=False):
        if isinstance(r.get("tags"), dict):
            r["tags"]["emotes"] = tag
        if len(r["params"]) > 1:
            r["params"][1] = "Kappa catJAM " + r["params"][1]
    renderer = HtmlRenderer(S, S + 60, "t", images)
    page = renderer.begin() + "".join(renderer.add(r) for r in recs) + renderer.end()
    table = script_json(page, "chat-images")["e"]
    for row in script_json(page, "chat-rows"):
        if isinstance(row[0], str) or row[1] not in ("P", "U"):
            continue
        spans = row[6] if row[1] == "P" and len(row) > 6 else row[5] if row[1] == "U" and len(row) > 5 else []
        text = row[3] if len(row) > 3 else ""
        shown = images_text(text)
        at = 0
        for a, b, i in spans:
            assert at <= a < b <= len(shown) and 0 <= i < len(table), (spans, shown)
            at = b


def images_text(text: str) -> str:
    from export.fields import me_action

    action = me_action(text)
    return text if action is None else action

"""Sharing the media folders: `serve` lists and serves them as wubloader's restreamer does, a
wubloader backfiller (modelled from the spec) copies ours, and our `sync` copies a wubloader
node's, checking every name and body a peer sends."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app as cli
from demo.twitchlike import free_port
from media import layout
from media.store import MediaStore
from serve.app import ChatApp
from serve.server import Running
from sync.client import Peer, new_pool
from sync.extras import check, sync_extras
from tests.test_serve import call
from tests.wubloader_extras import ExtrasNode, backfill_extras

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"png bytes" + bytes(20)
GIF = b"GIF89a" + b"gif bytes" + bytes(20)
HTML = b"<!DOCTYPE html><html>not an image</html>"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def filled(root: Path) -> MediaStore:
    """An archive root with emotes, one fetched link (content and metadata) and a stored image."""
    store = MediaStore(str(root))
    for v in layout.VARIANTS:
        store.write(layout.emote_relpath("25", v), PNG + v.encode())
        store.write(layout.emote_relpath("emotesv2_" + "a" * 32, v), GIF + v.encode())
    url = "https://example.com/cat.gif"
    folder, name, meta = layout.media_names(url, GIF, "image/gif")
    store.write(f"{folder}/{name}", GIF)
    store.write(
        f"{folder}/{meta}",
        layout.media_metadata(url, name, [], "image/gif", fetched_by="h", fetch_time=1.5),
    )
    store.put_image(PNG)
    return store


# -- serve --------------------------------------------------------------------------------------


def test_extras_listings_are_wubloaders(tmp_path: Path) -> None:
    app = ChatApp(str(tmp_path))
    for folder in ("emotes", "media", "images", "nonesuch"):
        assert call(app, f"/extras/{folder}")[::2] == (200, b"[]")  # missing: 200 [], never 404
    store = filled(tmp_path)
    open(os.path.join(str(tmp_path), "emotes", "25", ".dark-1.0.x.temp"), "wb").close()  # half-written
    status, headers, body = call(app, "/extras/emotes")
    assert status == 200 and headers["Content-Type"] == "application/json"
    listed = json.loads(body)
    assert listed == store.listing("emotes") and len(listed) == 12 and "25/dark-1.0" in listed
    assert len(json.loads(call(app, "/extras/media")[2])) == 2
    assert json.loads(call(app, "/files")[2]) == []  # emotes/, media/, images/ are not channels


def test_extras_files_are_served_safely(tmp_path: Path) -> None:
    filled(tmp_path)
    app = ChatApp(str(tmp_path))
    status, headers, body = call(app, "/segments/emotes/25/dark-1.0")
    assert (status, body) == (200, PNG + b"dark-1.0")
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert call(app, "/segments/emotes/25/dark-9.0")[0] == 404
    assert call(app, "/segments/emotes/25/../../etc/passwd")[0] in (403, 404)
    assert call(app, "/segments/emotes/25%2f..%2f..%2fx")[0] in (403, 404)
    os.symlink("/etc", os.path.join(str(tmp_path), "emotes", "26"))
    assert call(app, "/segments/emotes/26/dark-1.0")[0] == 404  # resolves outside ROOT


# -- a wubloader backfiller copies ours, and we copy a wubloader node's ---------------------------


def test_a_wubloader_backfiller_copies_our_extras(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    filled(ours)
    theirs = tmp_path / "theirs"
    with Running(ChatApp(str(ours))) as server:
        assert backfill_extras(server.url, str(theirs), ("emotes", "media")) == 14
        assert backfill_extras(server.url, str(theirs), ("emotes", "media")) == 0
    assert tree(theirs) == {k: v for k, v in tree(ours).items() if not k.startswith("images/")}


def test_we_sync_a_wubloader_nodes_extras(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    filled(theirs)
    ours = tmp_path / "ours"
    with ExtrasNode(str(theirs)) as node:
        result = CliRunner().invoke(cli, ["sync", str(ours), "--from", node.url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["media_files_fetched"] == 15
    assert tree(ours) == tree(theirs)


def test_sync_trusts_no_peer(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    filled(theirs)
    good_url = "https://example.com/ok.png"
    ok_folder, ok_name, ok_meta = layout.media_names(good_url, PNG, "image/png")
    liar_url = "https://example.com/liar.png"
    liar_folder = layout.media_names(liar_url, b"", "")[0]
    fake_hash = layout.b64_hash(b"something else")
    listing_emotes = json.dumps(
        [
            "25/dark-1.0",  # good
            "../../../tmp/pwned",
            "/etc/passwd",
            "2\u0665/dark-1.0",
            "77/dark-1.0",  # its body: an HTML page
            "78/light-1.0",  # its body: 20 MiB
        ]
    ).encode()
    bad_image = "ab" * 32 + ".png"
    overrides = {
        "/extras/emotes": listing_emotes,
        "/segments/emotes/77/dark-1.0": HTML,
        "/segments/emotes/78/light-1.0": PNG + bytes(20 << 20),
        "/extras/images": json.dumps([f"{bad_image[:2]}/{bad_image}"]).encode(),
        f"/segments/images/{bad_image[:2]}/{bad_image}": PNG,  # its hash is not its name
        "/extras/media": json.dumps(
            [
                f"{ok_folder[6:]}/{ok_name}",
                f"{ok_folder[6:]}/{ok_meta}",
                f"{liar_folder[6:]}/{fake_hash}.png",
                f"{ok_folder[6:]}/{fake_hash}.metadata.json",
            ]
        ).encode(),
        f"/segments/{ok_folder}/{ok_name}": PNG,
        f"/segments/{ok_folder}/{ok_meta}": layout.media_metadata(
            good_url, ok_name, [], "image/png", fetched_by="x", fetch_time=1
        ),
        f"/segments/{liar_folder}/{fake_hash}.png": PNG,  # hash of other bytes
        f"/segments/{ok_folder}/{fake_hash}.metadata.json": layout.media_metadata(
            "https://elsewhere.example/", "x.png", [], "image/png", fetched_by="x", fetch_time=1
        ),
    }
    ours = tmp_path / "ours"
    with ExtrasNode(str(theirs), overrides) as node:
        stats = sync_extras(str(ours), [Peer(node.url, new_pool(2), timeout=5)])
    got = tree(ours)
    assert sorted(got) == sorted(["emotes/25/dark-1.0", f"{ok_folder}/{ok_name}", f"{ok_folder}/{ok_meta}"]), got
    assert len(stats.refused) == 8, stats.refused
    assert not (tmp_path / "tmp").exists() and not Path("/tmp/pwned").exists()


@pytest.mark.parametrize(
    ("folder", "relpath", "body", "problem"),
    [
        ("emotes", "25/dark-1.0", PNG, None),
        ("emotes", "25/dark-1.0", HTML, "not-an-image"),
        ("emotes", "25/dark-1.0", b"", "empty"),
        ("images", f"xx/{hashlib.sha256(PNG).hexdigest()}.png", PNG, None),
        ("images", f"xx/{hashlib.sha256(PNG).hexdigest()}.gif", PNG, "kind does not match the name"),
        ("images", f"xx/{hashlib.sha256(GIF).hexdigest()}.gif", PNG, "hash does not match the name"),
        ("media", f"u/{layout.b64_hash(HTML)}.png", HTML, "not an image"),
        ("media", f"u/{layout.b64_hash(HTML)}.mp4", HTML, None),
        ("media", "u/x.metadata.json", b"[]", "metadata lacks url or filename"),
        ("media", "u/x.metadata.json", b"{", "metadata is not JSON"),
    ],
)
def test_check(folder: str, relpath: str, body: bytes, problem: Any) -> None:
    assert check(folder, relpath, body) == problem


def test_a_flood_of_bad_names_costs_bounded_lines_and_leaves_the_folder(tmp_path: Path) -> None:
    """A listing of 5,000 names we never keep: 100 refusals in a row abandon the folder with one
    line, only the first 50 are printed (then one line counting the rest), and the next folder
    is still fetched."""
    theirs = tmp_path / "theirs"
    filled(theirs)
    flood = json.dumps([f"../x{i}" for i in range(5000)]).encode()
    lines: list[str] = []
    with ExtrasNode(str(theirs), {"/extras/emotes": flood}) as node:
        stats = sync_extras(
            str(tmp_path / "ours"), [Peer(node.url, new_pool(2), timeout=5)], ["emotes", "images"], lines.append
        )
    assert stats.refusals == 100
    assert len(lines) == 52 and lines == stats.refused
    assert "100 refusals in a row" in lines[50] and "50 more refusals not shown" in lines[51]
    assert stats.fetched == 1  # the image in images/


def test_a_peers_extras_stop_at_their_deadline(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    filled(theirs)
    lines: list[str] = []
    with ExtrasNode(str(theirs), {}) as node:
        stats = sync_extras(
            str(tmp_path / "ours"), [Peer(node.url, new_pool(2), timeout=5)], on_refusal=lines.append, peer_deadline=0
        )
    assert stats.fetched == 0 and stats.refusals == 0
    assert len(lines) == 1 and "took over 0 s" in lines[0]


def test_a_peer_that_cannot_be_reached_is_asked_for_one_folder_only(tmp_path: Path) -> None:
    """Each ask of a dead peer waits out the retries: asking it for every folder cost a one-shot
    sync half a minute per dead peer. One refusal, one line saying the rest waits, and the next
    peer is still synced."""
    theirs = tmp_path / "theirs"
    filled(theirs)
    dead = f"http://127.0.0.1:{free_port()}"
    asked: list[float] = []
    lines: list[str] = []
    with ExtrasNode(str(theirs), {}) as node:
        stats = sync_extras(
            str(tmp_path / "ours"),
            [Peer(dead, new_pool(2), timeout=5, sleep=asked.append), Peer(node.url, new_pool(2), timeout=5)],
            on_refusal=lines.append,
        )
    assert stats.refusals == 1 and "cannot reach the peer" in lines[0], lines
    assert lines[1] == f"{dead}: its other extras folders wait for the next pass"
    assert len(asked) == 3  # the retries of the one folder asked, not of every folder
    assert stats.fetched > 0  # the live peer after it

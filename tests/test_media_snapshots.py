"""Taking third-party emote and badge snapshots against a loopback fake of each API and CDN
(tests/mediafakes.py): files written where media/snapshots.py says, each image stored once by its
hash and fetched once however many snapshots name it, hostile answers kept out, the token never
written anywhere."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chat_archiver.cli import app
from media.badges import BadgeTimeline, Helix, read_badges, take_badges
from media.snapshots import http_fetch, read_snapshots, snapshot_channels, take_snapshot
from media.store import MediaStore
from media.thirdparty import GLOBAL, EmoteTimeline, sources
from tests.archives import write_batch
from tests.mediafakes import FakeApis, animated_gif, png
from tests.strategies import play_message

RED, GREEN, BLUE = png(8, (255, 0, 0)), png(8, (0, 255, 0)), png(8, (0, 0, 255))
DANCE = animated_gif(8, [(255, 0, 0), (0, 0, 255)])
BTTV_ID, FFZ_ID, STV_ID = "5f1b0186cf6d2144653d2970", "720507", "60ae7316f7c927fad14e6ca2"


@pytest.fixture
def fake() -> Iterator[FakeApis]:
    apis = FakeApis()
    apis.json("/3/cached/emotes/global", [{"id": "54fa8f1401e468494b85b537", "code": ":tf:", "imageType": "png"}])
    apis.json(
        "/3/cached/users/twitch/42",
        {
            "channelEmotes": [{"id": BTTV_ID, "code": "catJAM", "imageType": "gif", "animated": True}],
            "sharedEmotes": [],
        },
    )
    apis.image("/emote/54fa8f1401e468494b85b537/2x", RED)
    apis.image(f"/emote/{BTTV_ID}/2x", DANCE, "image/gif")
    apis.json("/v1/set/global", {"default_sets": [3], "sets": {"3": {"emoticons": []}}})
    apis.json(
        "/v1/room/id/42",
        {"room": {"set": 9}, "sets": {"9": {"emoticons": [{"id": 720507, "name": "pepeD", "animated": {"1": "x"}}]}}},
    )
    apis.image(f"/emote/{FFZ_ID}/animated/2", GREEN)
    apis.json("/v3/emote-sets/global", {"emotes": [{"id": STV_ID, "name": "EZ", "data": {"animated": False}}]})
    # 7TV has no user for this channel: 404, an answer (an empty set)
    apis.image(f"/emote/{STV_ID}/2x.webp", BLUE)
    yield apis
    apis.close()


def mirrors(fake: FakeApis) -> dict[str, str | None]:
    return {"bttv": fake.url, "ffz": fake.url, "7tv": fake.url}


def test_a_round_writes_one_file_per_scope_and_provider_and_stores_each_image(tmp_path: Path, fake: FakeApis) -> None:
    store = MediaStore(str(tmp_path))
    findings = snapshot_channels(
        str(tmp_path), {"chan": "42"}, store=store, fetch=http_fetch(), mirrors=mirrors(fake), now=lambda: 1_700_000_000
    )
    assert findings == []
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "thirdparty").rglob("*.json"))
    assert files == [
        f"thirdparty/{p}/{s}/20231114T221320Z.json" for p in ("7tv", "bttv", "ffz") for s in ("_global", "chan")
    ]
    loaded = read_snapshots(str(tmp_path), ["chan", GLOBAL])
    assert loaded.problems == []
    table = EmoteTimeline.of(loaded.snapshots).at("chan", 1_700_000_000)
    assert sorted(table) == [":tf:", "EZ", "catJAM", "pepeD"]
    name = table["catJAM"].image
    assert name == hashlib.sha256(DANCE).hexdigest() + ".gif" and store.get_image(name) == DANCE
    assert table["catJAM"].animated and table["pepeD"].animated and not table["EZ"].animated
    empty = [s for s in loaded.snapshots if s.provider == "7tv" and s.scope == "chan"]
    assert len(empty) == 1 and empty[0].emotes == () and empty[0].channel_id == "42"


def test_an_image_is_fetched_once_across_snapshots(tmp_path: Path, fake: FakeApis) -> None:
    store = MediaStore(str(tmp_path))
    for t in (1_700_000_000, 1_700_010_800):
        snapshot_channels(
            str(tmp_path), {"chan": "42"}, store=store, fetch=http_fetch(), mirrors=mirrors(fake), now=lambda t=t: t
        )
    assert fake.hits(f"/emote/{BTTV_ID}/2x") == 1 and fake.hits("/3/cached/users/twitch/42") == 2
    assert len(list((tmp_path / "thirdparty" / "bttv" / "chan").iterdir())) == 2


def test_a_failed_answer_writes_nothing_and_the_previous_stays_in_force(tmp_path: Path, fake: FakeApis) -> None:
    store = MediaStore(str(tmp_path))
    source = sources(mirrors(fake))["bttv"]
    first, _ = take_snapshot(str(tmp_path), source, "chan", "42", store=store, fetch=http_fetch(), now=100.0)
    fake.routes["/3/cached/users/twitch/42"] = (500, b"oops", "text/plain")
    second, findings = take_snapshot(str(tmp_path), source, "chan", "42", store=store, fetch=http_fetch(), now=200.0)
    assert second is None and "HTTP 500" in findings[0]
    fake.routes["/3/cached/users/twitch/42"] = (200, b"<html>not json</html>", "text/html")
    third, findings = take_snapshot(str(tmp_path), source, "chan", "42", store=store, fetch=http_fetch(), now=300.0)
    assert third is None and "not JSON" in findings[0]
    timeline = EmoteTimeline.of(read_snapshots(str(tmp_path), ["chan"]).snapshots)
    assert timeline.lookup("chan", 250, "catJAM") == first.emotes[0]  # type: ignore[union-attr]


def test_hostile_answers_keep_what_is_valid(tmp_path: Path, fake: FakeApis) -> None:
    store = MediaStore(str(tmp_path))
    fake.json(
        "/3/cached/users/twitch/42",
        {
            "channelEmotes": [
                {"id": "../../../etc", "code": "evil"},
                {"id": "htmlimage", "code": "lies"},
                {"id": BTTV_ID, "code": "catJAM"},
            ],
            "sharedEmotes": {"not": "a list"},
        },
    )
    fake.routes["/emote/htmlimage/2x"] = (200, b"<html>an error page</html>", "image/png")  # a lying type
    snap, findings = take_snapshot(
        str(tmp_path), sources(mirrors(fake))["bttv"], "chan", "42", store=store, fetch=http_fetch(), now=1.0
    )
    assert snap is not None
    assert [(e.word, e.image is not None) for e in snap.emotes] == [("lies", False), ("catJAM", True)]
    assert len(findings) == 3 and "not kept as an image" in findings[2]
    assert not any("etc" in p for p, _ in fake.requests)  # the hostile id was never a URL
    stored = json.loads(next((tmp_path / "thirdparty" / "bttv" / "chan").iterdir()).read_text())
    assert len(stored["findings"]) == 3


def test_an_endless_image_is_cut_at_the_cap(tmp_path: Path, fake: FakeApis) -> None:
    def endless(handler: object) -> None:
        h = handler  # a BaseHTTPRequestHandler
        h.send_response(200)  # type: ignore[attr-defined]
        h.send_header("Content-Type", "image/png")  # type: ignore[attr-defined]
        h.end_headers()  # type: ignore[attr-defined]
        try:
            for _ in range(10_000):
                h.wfile.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 65536)  # type: ignore[attr-defined]
        except OSError:
            pass

    fake.routes[f"/emote/{BTTV_ID}/2x"] = endless
    snap, findings = take_snapshot(
        str(tmp_path),
        sources(mirrors(fake))["bttv"],
        "chan",
        "42",
        store=MediaStore(str(tmp_path)),
        fetch=http_fetch(),
        now=1.0,
    )
    assert snap is not None and snap.emotes[0].image is None
    assert "longer than the cap" in findings[0]


# --- badges ---------------------------------------------------------------------------------------

TOKEN = "s3cr3tt0ken"


def helix_fake(fake: FakeApis) -> None:
    fake.json("/oauth2/validate", {"client_id": "abc123", "login": "me", "scopes": [], "expires_in": 100})

    def version(vid: str, uuid: str) -> dict[str, str]:
        url = f"https://static-cdn.jtvnw.net/badges/v1/{uuid}/2"
        return {"id": vid, "title": f"t{vid}", "image_url_1x": url, "image_url_2x": url, "image_url_4x": url}

    g = "5527c58c-fb7d-422d-b71b-f309dcb85cc1"
    c = "3267646d-33f0-4b17-b3df-f923a41db1d0"
    fake.json(
        "/helix/chat/badges/global",
        {
            "data": [
                {"set_id": "subscriber", "versions": [version("0", g)]},
                {
                    "set_id": "moderator",
                    "versions": [version("1", g), {"id": "2", "image_url_2x": "http://169.254.169.254/x"}],
                },
            ]
        },
    )
    fake.json(
        "/helix/chat/badges?broadcaster_id=42", {"data": [{"set_id": "subscriber", "versions": [version("0", c)]}]}
    )
    fake.image(f"/badges/v1/{g}/2", RED)
    fake.image(f"/badges/v1/{c}/2", BLUE)


def test_badges_with_a_token_channel_over_global_and_the_token_nowhere(tmp_path: Path, fake: FakeApis) -> None:
    helix_fake(fake)
    store = MediaStore(str(tmp_path))
    helix = Helix.mirror(fake.url)
    g, gf = take_badges(str(tmp_path), helix, "oauth:" + TOKEN, GLOBAL, None, store=store, fetch=http_fetch(), now=10.0)
    c, cf = take_badges(str(tmp_path), helix, TOKEN, "chan", "42", store=store, fetch=http_fetch(), now=10.0)
    assert g is not None and c is not None and cf == []
    assert len(gf) == 1 and "not on Twitch's badge CDN" in gf[0]  # the link-local URL was never fetched
    assert not any("169.254" in p for p, _ in fake.requests)
    table = BadgeTimeline.of(read_badges(str(tmp_path), ["chan", GLOBAL])[0]).at("chan", 11)
    assert store.get_image(table[("subscriber", "0")].image or "") == BLUE  # the channel's own
    assert store.get_image(table[("moderator", "1")].image or "") == RED
    assert table[("moderator", "2")].image is None
    helix_calls = [h for p, h in fake.requests if p.startswith("/helix/")]
    assert helix_calls and all(
        h["Authorization"] == f"Bearer {TOKEN}" and h["Client-Id"] == "abc123" for h in helix_calls
    )
    assert [h["Authorization"] for p, h in fake.requests if p == "/oauth2/validate"] == [f"OAuth {TOKEN}"] * 2
    for dirpath, _, names in os.walk(tmp_path):
        for name in names:
            assert TOKEN.encode() not in Path(dirpath, name).read_bytes()
    assert not any(TOKEN in f for f in gf + cf)
    assert all(TOKEN not in p for p, _ in fake.requests)  # never in a URL


def test_a_refused_token_is_a_finding_without_the_token(tmp_path: Path, fake: FakeApis) -> None:
    fake.json("/oauth2/validate", {"status": 401, "message": "invalid access token"}, status=401)
    snap, findings = take_badges(
        str(tmp_path),
        Helix.mirror(fake.url),
        TOKEN,
        GLOBAL,
        None,
        store=MediaStore(str(tmp_path)),
        fetch=http_fetch(),
        now=1.0,
    )
    assert snap is None and "HTTP 401" in findings[0] and TOKEN not in findings[0]
    assert not (tmp_path / "badges").exists()


# --- the command, as a user runs it ---------------------------------------------------------------


def test_the_emotes_command(tmp_path: Path, fake: FakeApis, monkeypatch: pytest.MonkeyPatch) -> None:
    helix_fake(fake)
    root = tmp_path / "archive"
    write_batch(str(root), "chan", 1_700_000_040, [play_message(0, 1_700_000_050, "a", "hi", **{"room-id": "42"})])
    urls = ["--bttv-url", fake.url, "--ffz-url", fake.url, "--7tv-url", fake.url, "--helix-url", fake.url]
    refused = CliRunner().invoke(app, ["emotes", str(root), "chan", *urls])
    assert refused.exit_code == 1, refused.output  # loopback is not a global address: refused
    assert "private" in refused.stderr or "address" in refused.stderr, refused.stderr
    assert not (root / "thirdparty").exists()
    assert "badges stay text" in refused.stderr
    monkeypatch.setenv("CHAT_ARCHIVER_TOKEN", TOKEN)
    done = CliRunner().invoke(app, ["emotes", str(root), "#Chan", *urls, "--allow-private-addresses"])
    assert "--allow-private-addresses" in done.stderr  # loud when on
    assert done.exit_code == 1, done.output  # the global badges' link-local URL is a finding
    assert TOKEN not in done.output
    assert len(list((root / "thirdparty").rglob("*.json"))) == 6  # the id came from the records
    assert len(list((root / "badges").rglob("*.json"))) == 2
    bad = CliRunner().invoke(app, ["emotes", str(root), "chan", "--bttv-url", "ftp://x"])
    assert bad.exit_code == 2 and "--bttv-url must be" in bad.stderr
    unknown = CliRunner().invoke(app, ["emotes", str(root), "nobody"])
    assert unknown.exit_code == 2 and "nobody=ID" in unknown.stderr


# --- sharing: serve lists the snapshot folders, sync copies and checks them -----------------------


def test_snapshot_names_a_peer_may_list() -> None:
    from media.layout import relpath_ok

    assert relpath_ok("thirdparty", "bttv/_global/20231114T221320Z.json")
    assert relpath_ok("thirdparty", "7tv/desertbus/20231114T221320Z-2.json")
    assert relpath_ok("badges", "desertbus/20231114T221320Z.json")
    for bad in (
        "bttv/_global/../x.json",
        "bttv/Desertbus/20231114T221320Z.json",
        "gif/_global/20231114T221320Z.json",
        "bttv/_global/20231114T221320Z.json.temp",
        "bttv/_global/.20231114T221320Z.json",
        "bttv/20231114T221320Z.json",
    ):
        assert not relpath_ok("thirdparty", bad), bad
    assert not relpath_ok("badges", "x/y/20231114T221320Z.json")


def test_a_peers_snapshot_must_be_the_one_its_path_names() -> None:
    from media.thirdparty import Emote, Snapshot
    from sync.extras import check

    snap = Snapshot("bttv", "chan", 1_700_000_000.0, (Emote("bttv", "b1", "catJAM"),))
    body = json.dumps(snap.to_json()).encode()
    assert check("thirdparty", "bttv/chan/20231114T221320Z.json", body) is None
    assert check("thirdparty", "ffz/chan/20231114T221320Z.json", body) == "a snapshot of another provider"
    assert check("thirdparty", "bttv/other/20231114T221320Z.json", body) == "a snapshot of another scope"
    assert check("thirdparty", "bttv/_global/20231114T221320Z.json", body) == "a snapshot of another scope"
    assert check("thirdparty", "bttv/chan/20231114T221321Z.json", body) == "taken at another time than its name says"
    assert check("thirdparty", "bttv/chan/20231114T221320Z.json", b"<html>") == "not a snapshot"
    assert check("thirdparty", "bttv/chan/20231114T221320Z.json", b'{"version": 2}') == "not a snapshot"
    badges = badge_snapshot_json(GLOBAL, 1_700_000_000.0)
    assert check("badges", "_global/20231114T221320Z.json", badges) is None
    assert check("badges", "chan/20231114T221320Z.json", badges) == "a snapshot of another scope"


@pytest.mark.parametrize("t", [5e11, -1.0, 253402300800.0])
def test_a_peers_snapshot_taken_at_an_impossible_time_is_refused_not_a_crash(t: float) -> None:
    from media.thirdparty import Snapshot
    from sync.extras import check

    body = json.dumps(Snapshot("bttv", "chan", t, ()).to_json()).encode()
    assert check("thirdparty", "bttv/chan/20231114T221320Z.json", body) == "taken at an impossible time"
    badges = badge_snapshot_json(GLOBAL, t)
    assert check("badges", "_global/20231114T221320Z.json", badges) == "taken at an impossible time"


@pytest.mark.parametrize("t", ["1e300", "-1e300", "NaN", "Infinity"])
def test_a_badge_snapshot_with_an_unreadable_time_is_not_a_snapshot(t: str) -> None:
    from media.badges import BadgeSnapshot
    from sync.extras import check

    body = f'{{"version":1,"scope":"_global","time":{t},"badges":[]}}'.encode()
    if t in ("1e300", "-1e300"):
        assert check("badges", "_global/20231114T221320Z.json", body) == "not a snapshot"
    with pytest.raises(ValueError, match="time"):
        BadgeSnapshot.from_json({"version": 1, "scope": "_global", "time": float(t), "badges": []}, "x")


def badge_snapshot_json(scope: str, t: float) -> bytes:
    from media.badges import Badge, BadgeSnapshot

    return json.dumps(BadgeSnapshot(scope, t, (Badge("moderator", "1"),)).to_json()).encode()


@pytest.mark.integration
def test_sync_copies_a_peers_snapshots_and_their_images(tmp_path: Path, fake: FakeApis) -> None:
    from serve.app import ChatApp
    from serve.server import Running
    from sync.client import Peer, new_pool
    from sync.extras import sync_extras

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    snapshot_channels(
        str(ours),
        {"chan": "42"},
        store=MediaStore(str(ours)),
        fetch=http_fetch(),
        mirrors=mirrors(fake),
        now=lambda: 1_700_000_000,
    )
    with Running(ChatApp(str(ours))) as server:
        stats = sync_extras(str(theirs), [Peer(server.url, new_pool(2), timeout=5)])
    assert stats.refused == []
    mine = EmoteTimeline.of(read_snapshots(str(ours), ["chan", GLOBAL]).snapshots)
    copied = EmoteTimeline.of(read_snapshots(str(theirs), ["chan", GLOBAL]).snapshots)
    assert copied.at("chan", 1_700_000_001) == mine.at("chan", 1_700_000_001) != {}
    assert MediaStore(str(theirs)).get_image(copied.at("chan", 1_700_000_001)["catJAM"].image or "") == DANCE


def test_reading_follows_the_window(tmp_path: Path) -> None:
    """Years of six-hourly snapshots: an export reads the one in force at its start and those
    taken before its end, never the rest."""
    from media.snapshots import write_snapshot
    from media.thirdparty import Snapshot

    for k in range(40):
        write_snapshot(str(tmp_path), Snapshot("bttv", "chan", 1_700_000_000 + k * 21600, ()))
    got = read_snapshots(
        str(tmp_path), ["chan"], since=1_700_000_000 + 10 * 21600 + 5, until=1_700_000_000 + 13 * 21600
    )
    assert [int((s.time - 1_700_000_000) / 21600) for s in got.snapshots] == [10, 11, 12]
    assert len(read_snapshots(str(tmp_path), ["chan"]).snapshots) == 40


def test_deeply_nested_json_is_a_finding_not_a_crash(tmp_path: Path, fake: FakeApis) -> None:
    fake.routes["/3/cached/users/twitch/42"] = (200, b"[" * 200_000, "application/json")
    snap, findings = take_snapshot(
        str(tmp_path),
        sources(mirrors(fake))["bttv"],
        "chan",
        "42",
        store=MediaStore(str(tmp_path)),
        fetch=http_fetch(),
        now=1.0,
    )
    assert snap is None and "not JSON" in findings[0]
    folder = tmp_path / "thirdparty" / "bttv" / "chan"
    folder.mkdir(parents=True)
    (folder / "20231114T221320Z.json").write_bytes(b"[" * 200_000)
    loaded = read_snapshots(str(tmp_path), ["chan"])
    assert loaded.snapshots == [] and "20231114T221320Z.json" in loaded.problems[0]

"""The media stage's layout (wubloader's names), its name grammar, the image sniffer and the store."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from formats.errors import InputError
from media import layout
from media.sniff import image_kind, image_problem
from media.store import MediaStore, write_atomic

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16


def test_emote_variants_and_urls_are_wubloaders() -> None:
    # WUBLOADER_MEDIA.md: emotes/<id>/<theme>-<scale>, six variants, from the v2 CDN path
    assert [layout.emote_relpath("25", v) for v in layout.VARIANTS] == [
        "emotes/25/light-1.0",
        "emotes/25/light-2.0",
        "emotes/25/light-3.0",
        "emotes/25/dark-1.0",
        "emotes/25/dark-2.0",
        "emotes/25/dark-3.0",
    ]
    assert layout.emote_url("25", "dark-3.0") == "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/3.0"
    assert layout.emote_url("25", "light-1.0", "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/emoticons/v2/25/default/light/1.0"
    )


def test_emote_ids_of_a_tag() -> None:
    assert layout.emote_ids("25:0-4,12-16/emotesv2_0123456789abcdef0123456789abcdef:6-10") == [
        "25",
        "emotesv2_0123456789abcdef0123456789abcdef",
    ]
    assert layout.emote_ids("25:0-4/25:6-10") == ["25"]
    assert layout.emote_ids("") == []
    assert layout.emote_ids("..:0-1/ok:1-2/nocolon/a b:1-2") == ["ok"]
    assert layout.record_emote_ids({"tags": {"emotes": "1:0-1"}}) == ["1"]
    assert layout.record_emote_ids({"tags": None}) == []


@given(st.text(max_size=200))
def test_emote_ids_never_name_a_path(tag: str) -> None:
    for emote_id in layout.emote_ids(tag):
        assert layout.relpath_ok("emotes", f"{emote_id}/dark-1.0"), emote_id


def test_media_names_are_the_specs() -> None:
    url, body = "https://example.com/a.png", b"hello"
    folder, name, meta = layout.media_names(url, body, "image/png")
    b64 = base64.urlsafe_b64encode(hashlib.sha256(url.encode()).digest()).decode().rstrip("=")
    assert folder == f"media/{b64}"
    content = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    assert (name, meta) == (f"{content}.png", f"{content}.metadata.json")


@pytest.mark.parametrize(
    ("content_type", "ext"),
    [
        ("image/png", "png"),
        ("image/svg+xml", "svg"),
        ("video/mp4; codecs=avc1", "mp4"),
        ("image/../../etc", ""),
        ("image/PNG", ""),
        ("application/pdf", "pdf"),
        ("nonsense", ""),
    ],
)
def test_media_extension(content_type: str, ext: str) -> None:
    assert layout.media_ext(content_type) == ext


def test_media_metadata_keys_in_wubloaders_order() -> None:
    meta = json.loads(
        layout.media_metadata("u", "f.png", ["r1"], "image/png", fetched_by="host", fetch_time=1700000000.5)
    )
    assert list(meta) == ["url", "filename", "redirects", "content_type", "fetched_by", "fetch_time"]


@pytest.mark.parametrize(
    ("folder", "relpath", "ok"),
    [
        ("emotes", "25/dark-1.0", True),
        ("emotes", "25/dark-4.0", False),
        ("emotes", "../25/dark-1.0", False),
        ("emotes", "25/../dark-1.0", False),
        ("emotes", "25/.dark-1.0.abc.temp", False),
        ("emotes", "2\u0665/dark-1.0", False),  # an Arabic-Indic digit: not ASCII
        ("emotes", "25/dark-1.0/x", False),
        ("media", "A" * 43 + "/" + "B" * 43 + ".png", True),
        ("media", "A" * 43 + "/" + "B" * 43 + ".metadata.json", True),
        ("media", "A" * 43 + "/" + "B" * 43 + "..", False),
        ("media", "A" * 43 + "/" + "B" * 42 + ".png", False),
        ("media", "/etc/passwd", False),
        ("images", "ab/ab" + "0" * 62 + ".png", True),
        ("images", "cd/ab" + "0" * 62 + ".png", False),
        ("images", "ab/ab" + "0" * 62 + ".exe", False),
        ("other", "x", False),
    ],
)
def test_relpath_grammar(folder: str, relpath: str, ok: bool) -> None:
    assert layout.relpath_ok(folder, relpath) is ok


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "png"),
        (GIF, "gif"),
        (b"GIF87a...", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x1cftypavif\x00", "avif"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpg"),
        (b"<!doctype html><html>", None),
        (b'{"error":"Not Found"}', None),
        (b"", None),
    ],
)
def test_image_kind(data: bytes, kind: str | None) -> None:
    assert image_kind(data) == kind


def test_image_problem() -> None:
    assert image_problem(PNG) is None
    assert image_problem(b"") == "empty"
    assert image_problem(PNG, cap=10) == "too-large"
    assert image_problem(b"<html>") == "not-an-image"


def test_image_store_is_content_addressed(tmp_path: object) -> None:
    store = MediaStore(str(tmp_path))
    name = store.put_image(PNG)
    assert name == hashlib.sha256(PNG).hexdigest() + ".png"
    assert store.put_image(PNG) == name
    assert store.get_image(name) == PNG
    assert store.listing("images") == [f"{name[:2]}/{name}"]
    with open(store.image_path(name), "wb") as f:  # damage it: never handed out as that image
        f.write(GIF)
    assert store.get_image(name) is None
    with pytest.raises(InputError):
        store.put_image(b"<html>not an image</html>")


def test_write_atomic_never_overwrites_and_leaves_no_temp(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "emotes", "25", "dark-1.0")
    assert write_atomic(path, b"first") is True
    assert write_atomic(path, b"second") is False
    with open(path, "rb") as f:
        assert f.read() == b"first"
    assert os.listdir(os.path.dirname(path)) == ["dark-1.0"]


def test_listing_is_recursive_and_skips_hidden(tmp_path: object) -> None:
    store = MediaStore(str(tmp_path))
    assert store.listing("emotes") == []  # a missing folder lists as []
    store.write("emotes/25/dark-1.0", PNG)
    store.write("emotes/1/light-2.0", PNG)
    open(os.path.join(str(tmp_path), "emotes", "25", ".dark-2.0.x.temp"), "wb").close()
    assert store.listing("emotes") == ["1/light-2.0", "25/dark-1.0"]
    assert store.missing_variants("25") == [v for v in layout.VARIANTS if v != "dark-1.0"]
    assert store.usage("emotes") == (2, 2 * len(PNG))


def test_store_paths_never_leave_root(tmp_path: object) -> None:
    store = MediaStore(str(tmp_path))
    with pytest.raises(ValueError):
        store.path("../outside")
    os.symlink("/", os.path.join(str(tmp_path), "emotes"))
    with pytest.raises(ValueError):
        store.emote_path("25", "dark-1.0")


_PIECES = [
    "..",
    ".",
    "",
    "25",
    "dark-1.0",
    "A" * 43,
    "B" * 43 + ".png",
    "B" * 43 + "..",
    "ab",
    "ab" + "0" * 62 + ".png",
]
_PIECES += ["x\u0665", ".hidden", "/", "\\", "%2e%2e", "\x00", "metadata.json", "C" * 43 + ".metadata.json"]
_names = st.lists(st.sampled_from(_PIECES), max_size=4).map("/".join)


@given(st.sampled_from((*layout.EXTRAS, "other")), _names)
def test_an_accepted_name_stays_in_its_folder(folder: str, relpath: str) -> None:
    """Whatever a peer lists, a name the grammar accepts is a plain relative path inside its folder."""
    event("accepted" if layout.relpath_ok(folder, relpath) else "refused")
    if layout.relpath_ok(folder, relpath):
        joined = os.path.normpath(os.path.join("/root", folder, relpath))
        assert joined.startswith(f"/root/{folder}/"), relpath
        assert relpath.isascii() and not any(p.startswith(".") or p == "" for p in relpath.split("/"))


@given(st.text(max_size=300))
def test_find_links_never_raises_and_finds_no_ip_literal(text: str) -> None:
    from media.links import find_links

    for link in find_links(text):
        host = link.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        assert "." in host and host.rsplit(".", 1)[1][:1].isalpha(), link


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("look https://example.com/a.png", ["https://example.com/a.png"]),
        ("example.com/x and http://a.b.c:8080", ["example.com/x", "http://a.b.c:8080"]),
        ("fart.wav", []),  # no scheme, no path
        ("rated 1.5/10", []),  # the last label starts with a digit
        ("http://10.0.0.1/x", []),  # an IP address is not a link
        ("x/example.com/y", []),  # inside a path
        ("foo_example.com/y", []),  # inside a word
        ("(example.com/a)", ["example.com/a)"]),  # the retry after a 4xx strips the `)`
    ],
)
def test_find_links_is_wubloaders_pattern(text: str, links: list[str]) -> None:
    from media.links import find_links

    assert find_links(text) == links


@pytest.mark.parametrize(
    ("url", "stripped"),
    [("http://a.b/x.png!", "http://a.b/x.png"), ("http://a.b/x...", "http://a.b/x"), ("http://a.b/x", None)],
)
def test_strip_trailing(url: str, stripped: str | None) -> None:
    from media.links import strip_trailing

    assert strip_trailing(url) == stripped


def test_metrics_families_from_stats_and_status_file(tmp_path: object) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from media.metrics import MediaCollector, StatusCollector, StoreSize, status_bytes
    from media.workers import MediaStats

    stats = MediaStats()
    stats.add("fetches", ("emote", "ok"), 6)
    stats.add("refusals", ("link", "private-address"))
    stats.add("offers", ("emote", "dropped"), 3)
    store = MediaStore(str(tmp_path))
    store.write("emotes/25/dark-1.0", PNG)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MediaCollector(stats, store))
    text = generate_latest(registry).decode()
    assert 'chat_archiver_media_fetches_total{kind="emote",outcome="ok"} 6.0' in text
    assert 'chat_archiver_media_refusals_total{kind="link",reason="private-address"} 1.0' in text
    assert 'chat_archiver_media_offers_total{answer="dropped",kind="emote"} 3.0' in text
    assert f'chat_archiver_media_store_bytes{{folder="emotes"}} {float(len(PNG))}' in text
    path = os.path.join(str(tmp_path), "status.json")
    with open(path, "wb") as f:
        f.write(status_bytes(stats, StoreSize(store)))
    from_file = CollectorRegistry(auto_describe=False)
    from_file.register(StatusCollector(path))
    assert generate_latest(from_file).decode() == text
    broken = CollectorRegistry(auto_describe=False)
    broken.register(StatusCollector(os.path.join(str(tmp_path), "missing.json")))
    assert "chat_archiver_media_fetches_total" in generate_latest(broken).decode()

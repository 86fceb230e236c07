"""A wubloader backfiller, deployed as wubloader deploys it (`--qualities source,480p,chat --extras
emotes,media`), copies a whole archive from `serve` over real HTTP without a failed pass. The
backfiller is the clean-room model in tests/wubloader_model.py (from WUBLOADER_HTTP.md): it reads
every listing as JSON whatever the status, so one 404 for `source` would end its pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.app import ChatApp
from serve.server import Running
from tests.wubloader_model import Backfiller, http_get

pytestmark = pytest.mark.integration

ARCHIVE = Path(__file__).parent.parent / "fixtures" / "export" / "archive"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.json")}


def test_deployed_backfiller_fetches_every_file(tmp_path: Path) -> None:
    with Running(ChatApp(str(ARCHIVE))) as server:
        backfiller = Backfiller(server.url, ["desertbus", "nobody"], tmp_path)
        first = backfiller.run_pass()
        again = backfiller.run_pass()
    assert first == len(_files(ARCHIVE)) > 0 and again == 0
    assert _files(tmp_path) == _files(ARCHIVE)


@pytest.mark.parametrize(
    "path",
    [
        "/files/nobody",
        "/files/nobody/chat",
        "/files/desertbus/source",
        "/files/desertbus/480p",
        "/files/nobody/source",
        "/files/desertbus/source/2023-11-14T22?tombstones=true",
        "/files/desertbus/chat/2023-11-14T99?tombstones=true",
        "/files/desertbus/chat/2020-01-01T00?tombstones=true",
        "/files/desertbus/chat/not-an-hour",
        "/files/No%20Such%20Channel/chat",
        "/files/%C3%A9/chat",
    ],
)
def test_listing_of_what_is_not_there_is_an_empty_array(path: str) -> None:
    """The restreamer's answer for a folder it does not have (WUBLOADER_HTTP.md): `200 []`."""
    with Running(ChatApp(str(ARCHIVE))) as server:
        assert http_get(server.url + path) == (200, b"[]")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/files/desertbus/source/2023-11-14T22?tombstones=maybe", 400),  # checked for any quality
        ("/files/desertbus/chat/2023-11-14T22/extra", 404),  # no such route
        ("/files/desertbus/../../etc", 403),  # sent as is: a part starting with a period
        ("/files/desertbus/%2e%2e/chat", 403),  # upstream's rule for a leading period
        ("/files/.hidden/chat", 403),
    ],
)
def test_listings_still_refuse_what_they_refused(path: str, status: int) -> None:
    with Running(ChatApp(str(ARCHIVE))) as server:
        assert http_get(server.url + path)[0] == status

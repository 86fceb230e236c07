"""serve's player page in headless Chromium: the browser finds the hour, and the player, fed by
serve's own /CH/chat.jsonl, shows exactly what the export's page shows (the playback tests' session
and expectations, tests/test_player_browser.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from formats.canonical import batch_time_of
from serve.app import ChatApp
from serve.server import Running
from tests.archives import write_batch
from tests.test_player_browser import (  # `browser`: the playback tests' headless Chromium fixture
    S,
    browser,  # noqa: F401
    expected_at,
    needs_chromium,
    open_page,
    rows,
    seek,
    session,
)

pytestmark = [pytest.mark.integration, needs_chromium]


def test_the_player_served_plays_the_archive(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    driver: Any = request.getfixturevalue("browser")
    records = session()
    for minute in sorted({batch_time_of(r["time"]) for r in records}):
        write_batch(str(tmp_path), "chan", minute, [r for r in records if batch_time_of(r["time"]) == minute])
    with Running(ChatApp(str(tmp_path))) as server:
        driver.get(server.url + "/")
        links = [a.get_attribute("href") for a in driver.find_elements("css selector", "a") if a.text == "play"]
        assert links and all("/player/chan?start=" in link for link in links)
        open_page(driver, f"{server.url}/player/chan?start={S}&end={S + 120}#t=45")
        assert rows(driver) == expected_at(45)
        seek(driver, 120)
        assert rows(driver) == expected_at(120)

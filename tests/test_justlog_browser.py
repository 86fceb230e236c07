"""The justlog frontend's page load in a real browser (headless Chromium), same-origin and
cross-origin.

The frontend itself cannot be fetched here (it is not a registry package, and only loopback is
reachable), so the page below is a stand-in that makes exactly the frontend's calls, in its order
and with its URLs (`/channels`, `/list?channel=&user=`, then the first month with `?reverse&json`,
ids marked `id:` as the page marks them), and shows what it reads (`timestamp` through
`new Date`, `displayName`, `text`, `tags`), or "User or channel has opted out" on a 403. Served
by `serve --justlog-web`, and from another origin, where the browser's own CORS checks apply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index import open_index
from serve.app import ChatApp
from serve.justlog import JustlogApi, OptOutList
from serve.server import Running
from tests import justlog_archive as ja
from tests.test_player_browser import needs_chromium, start_browser

pytestmark = [pytest.mark.integration, needs_chromium]

PAGE = """<!doctype html><meta charset=utf-8><title>justlog stand-in</title>
<ul id=log></ul><p id=error></p><ul id=channels></ul>
<script src="/assets/app.js"></script>
"""
APP = """
(async () => {
  const params = new URL(window.location.href).searchParams;
  const api = params.get("api") || window.location.origin;
  const isId = (v) => v.startsWith("id:");
  const done = (state) => { document.documentElement.dataset.ready = state; };
  try {
    const channels = await (await fetch(`${api}/channels`)).json();
    for (const c of channels.channels) {
      const li = document.createElement("li"); li.textContent = c.name; channels_el.appendChild(li);
    }
    const channel = params.get("channel"), user = params.get("username");
    const list = new URL(`${api}/list`);
    list.searchParams.append(`channel${isId(channel) ? "id" : ""}`, channel);
    list.searchParams.append(`user${isId(user) ? "id" : ""}`, user);
    const listed = await fetch(list.toString());
    if (listed.status === 403) { error.textContent = "User or channel has opted out"; done("403"); return; }
    if (!listed.ok) { error.textContent = "no logs"; done("error"); return; }
    const months = (await listed.json()).availableLogs;
    const strip = (v) => v.replace("id:", "");
    const path = `/channel${isId(channel) ? "id" : ""}/${strip(channel)}/user${isId(user) ? "id" : ""}/${strip(user)}`;
    const month = new URL(`${api}${path}/${months[0].year}/${months[0].month}?reverse&json`);
    const logs = await (await fetch(month.toString())).json();
    for (const m of logs.messages) {
      const li = document.createElement("li");
      li.dataset.id = m.id;
      li.dataset.roomId = m.tags["room-id"];
      li.textContent = `${new Date(m.timestamp).toISOString()} ${m.displayName}: ${m.text}`;
      log.appendChild(li);
    }
    done("1");
  } catch (e) { error.textContent = String(e); done("error"); }
})();
""".replace("channels_el", "document.getElementById('channels')")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    (folder / "index.html").write_text(PAGE)
    (folder / "assets").mkdir()
    (folder / "assets" / "app.js").write_text(APP)
    return folder


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, web: Path) -> Iterator[str]:
    root = ja.write(str(tmp_path_factory.mktemp("browser") / "archive"))
    url = "sqlite:" + root + "/.index.sqlite"
    built = open_index(root, url)
    built.update()
    built.close()
    optout = tmp_path_factory.mktemp("optout") / "optout.txt"
    optout.write_text("hidden\n")
    api = JustlogApi(lambda: open_index(root, url), OptOutList.load(str(optout)), web=str(web))
    try:
        with Running(ChatApp(root, extra=api)) as server:
            yield server.url
    finally:
        api.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, url: str) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
    return str(driver.execute_script("return document.documentElement.dataset.ready"))


def shown(driver: Any) -> list[str]:
    return list(driver.execute_script("return [...document.querySelectorAll('#log li')].map(li => li.textContent)"))


GEMPIR_JUNE_NEWEST_FIRST = [
    "2024-06-16T09:00:00.000Z Gempir: the next day",
    "2024-06-15T12:00:09.000Z Gifter: ",
    "2024-06-15T12:00:01.000Z Gempir: waves",
    "2024-06-15T12:00:00.000Z Gempir: héllo Kappa 🎉",
    "2024-06-05T08:00:00.000Z Gempir: a one-digit day",
]


def test_page_load_same_origin(browser: Any, api_url: str) -> None:
    assert load(browser, f"{api_url}/?channel=pajlada&username=gempir") == "1"
    assert shown(browser) == GEMPIR_JUNE_NEWEST_FIRST
    channels = browser.execute_script("return [...document.querySelectorAll('#channels li')].map(li => li.textContent)")
    assert sorted(channels) == ["forsen", "pajlada", "ties"]


def test_page_load_by_ids(browser: Any, api_url: str) -> None:
    assert load(browser, f"{api_url}/?channel=id:{ja.PAJ}&username=id:{ja.GEMPIR}") == "1"
    assert shown(browser) == GEMPIR_JUNE_NEWEST_FIRST


def test_page_load_cross_origin(browser: Any, api_url: str, web: Path, tmp_path: Path) -> None:
    """The page on one origin, the API on another: the browser lets the page read the answers only
    because of the CORS headers."""
    with contextlib.ExitStack() as stack:
        other = stack.enter_context(Running(ChatApp(str(tmp_path), extra=JustlogApi(None, web=str(web)))))
        assert other.url != api_url
        assert load(browser, f"{other.url}/?channel=pajlada&username=gempir&api={api_url}") == "1"
        assert shown(browser) == GEMPIR_JUNE_NEWEST_FIRST


def test_opted_out_user_is_shown_as_such(browser: Any, api_url: str) -> None:
    assert load(browser, f"{api_url}/?channel=pajlada&username=hidden") == "403"
    assert browser.execute_script("return document.getElementById('error').textContent") == (
        "User or channel has opted out"
    )

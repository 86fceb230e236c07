"""`export --format html`: the page's data (no chat text can break out of it, nothing loads from
elsewhere), then the page itself in headless Chromium driven by selenium: seeking shows exactly
the messages sent by then, removals strike through from their moment, search filters, keys work,
and the same page fed from a URL (as `serve` will) shows the same. A screenshot goes to
test-artifacts/ (kept by CI, never compared)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from profiles import examples
from typer.testing import CliRunner

from chat_archiver.cli import app
from export.ass import stable_color
from export.html import render_page
from formats.canonical import batch_time_of, canonical_json
from tests.archives import write_batch
from tests.strategies import PLAY_START, archive_records, markup_text, play_message, play_removal, server_time

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts"
S = PLAY_START


def session() -> list[dict[str, Any]]:
    """Two minutes of chat with every kind of line the page shows."""
    sub = {
        "command": "USERNOTICE",
        "params": ["#chan", "hi all"],
        "sender": "tmi.twitch.tv",
        "user": None,
        "host": None,
        "receivers": {"host1.Ab3dE.0": S + 80.2},
        "time": S + 80,
        "time_range": 0,
        "tags": {
            "id": "sub1",
            "login": "erin",
            "display-name": "Erin",
            "msg-id": "sub",
            "system-msg": "Erin subscribed at Tier 1.",
        },
    }
    join = {
        "command": "JOIN",
        "params": ["#chan"],
        "sender": "zed",
        "user": "zed",
        "host": None,
        "tags": None,
        "receivers": {"host1.Ab3dE.0": S + 16},
        "time": S + 15,
        "time_range": 1,
    }
    return [
        play_message(0, S + 5, "alice", "hello world", color="#1E90FF", badges="moderator/1,subscriber/12"),
        play_message(1, S + 10, "bob", "\x01ACTION dances\x01"),
        join,
        play_message(
            2,
            S + 20,
            "carol",
            "me too",
            **{"reply-parent-display-name": "Alice", "reply-parent-msg-body": "hello world"},
        ),
        play_message(3, S + 30, "bob", "<b>not bold</b> </script> {\\i1}"),
        play_removal(S + 40, "CLEARMSG", "m3", "bob"),
        play_message(4, S + 50, "dave", "spam one"),
        play_message(5, S + 55, "dave", "spam two"),
        play_removal(S + 60, "CLEARCHAT", "dave"),
        play_message(6, S + 70, "alice", "after the timeout"),
        sub,
        play_message(7, S + 90, "erin", "no colour chosen"),
    ]


# what each message reads as on the page, in time order: (seconds, text of the row after the clock)
SHOWN = [
    (5, "moderatorsubscriber 12Alice: hello world"),  # badges are text in boxes
    (10, "Bob dances"),
    (20, "\u21aa @Alice: hello worldCarol: me too"),
    (30, "Bob: <b>not bold</b> </script> {\\i1}"),
    (50, "Dave: spam one"),
    (55, "Dave: spam two"),
    (70, "Alice: after the timeout"),
    (80, "\u2605 Erin subscribed at Tier 1.Erin: hi all"),
    (90, "Erin: no colour chosen"),
]
REMOVED_AT = {30: 40, 50: 60, 55: 60}


# --- the page as text -----------------------------------------------------------------------------


def script_json(page: str, name: str) -> Any:
    match = re.search(f'<script type="application/json" id="{name}">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


# Times a batch file can hold (a record at 1.8e305 s cannot be in any archive; the page skips it).
NAMEABLE = st.one_of(server_time, st.integers(0, 60))


@settings(max_examples=examples(0.4))
@given(st.lists(archive_records(numbers=NAMEABLE), max_size=5), markup_text)
@example([], "{{ROWS}} {{JS}} {{TITLE}}")
def test_no_record_breaks_out_of_the_page_data(records: list[dict[str, Any]], title: str) -> None:
    for r in records:
        if r["command"] == "PRIVMSG":
            r["params"] = ["#c", "</script><script>alert(1)</script>"]
    page = render_page(records, title=title, start=0)
    assert page.count("</script>") == 4 and page.count("<script") == 4  # meta, rows, images, the player
    data = script_json(page, "chat-rows")
    users = [row for row in data if isinstance(row[0], str)]
    rows = [row for row in data if not isinstance(row[0], str)]
    shown = [r for r in records if r["command"] in ("PRIVMSG", "USERNOTICE", "CLEARCHAT")]
    assert len(rows) == len(shown)
    for row, record in zip(rows, shown, strict=True):
        params = record["params"]
        text = params[1] if len(params) > 1 else ""
        assert row[3] == text and users[row[2]][0] == (record["user"] or (record["tags"] or {}).get("login") or "")
        assert data.index(users[row[2]]) < data.index(row)  # a user is defined before their first line


def test_rows_resolve_removals_and_define_each_user_once() -> None:
    from export.html import Slimmer

    slim = Slimmer(S)
    rows = [row for r in session() for row in slim.rows(r)]
    assert rows[:2] == [["alice", "Alice", "#1E90FF", "moderator/1,subscriber/12"], [5000, "P", 0, "hello world"]]
    assert [r for r in rows if r[1:2] == ["M"]] == [[40000, "M", 3, "deleted text", 3]]  # m3 is line 3
    assert [r[:2] + r[3:] for r in rows if r[1:2] == ["C"]] == [[60000, "C", "dave"]]
    assert [r for r in rows if r[0] == "bob"] == [["bob", "Bob"], ["bob"]]  # m1 and m3 share one; the CLEARMSG
    unknown = Slimmer(S).rows(play_removal(S, "CLEARMSG", "nothing"))
    assert unknown == [[""], [0, "M", 0, "deleted text", -1]]


def test_page_loads_nothing_from_elsewhere() -> None:
    page = render_page(session(), title="t", start=S, end=S + 120)
    # the one src the page writes is an emote's or badge's image, a checked data: URI (player.js imgHtml)
    assert page.count("src=") == 1 and 'return typeof uri === "string" && DATA_URI.test(uri)' in page
    assert not re.search(r"\b(src|href)\s*=", page.replace("'\" src=\"' + uri", ""))
    assert "img-src data:;" in page
    assert "http:" not in page and "https:" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the CSP forbids any load the page might try


def test_page_data_is_compact() -> None:
    """One short array per message, not one element each: the chat text plus about 20 bytes."""
    many = [play_message(i, S + i / 10, f"user{i % 50}", f"message number {i}", color="#123456") for i in range(2000)]
    page = render_page(many, title="t", start=S)
    data = len(page) - len(render_page([], title="t", start=S))
    text = sum(len(r["params"][1]) for r in many)
    assert data < text + 2000 * 25, (data, text)


# --- the page in a browser ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (.ci/run installs them)",
)


def start_browser(width: int = 1000, height: int = 600) -> Any:
    """Headless Chromium through the system chromedriver (selenium never fetches a driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session archived (two minute files) and exported with the CLI, as a user would."""
    folder = tmp_path_factory.mktemp("player")
    records = session()
    for minute in sorted({batch_time_of(r["time"]) for r in records}):
        write_batch(str(folder / "archive"), "chan", minute, [r for r in records if batch_time_of(r["time"]) == minute])
    out = folder / "chat.html"
    result = CliRunner().invoke(
        app,
        [
            "export",
            str(folder / "archive"),
            "chan",
            "--since",
            str(S),
            "--until",
            str(S + 120),
            "--format",
            "html",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def open_page(driver: Any, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")  # a fresh page each time, even when only the #t= changes
    driver.get(url)
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
    assert driver.execute_script("return document.documentElement.dataset.ready") == "1"


def seek(driver: Any, seconds: float) -> None:
    """Drag the slider to `seconds` (set its value and fire `input`, as a drag does)."""
    driver.execute_script(
        "const s = document.getElementById('slider'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input', {bubbles: true}));",
        str(int(seconds * 1000)),
    )


def rows(driver: Any) -> list[tuple[str, bool]]:
    """The rows on screen: text after the clock, and whether it is struck through."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#rows .row')).map(function (row) {
            var ts = row.querySelector('.ts').textContent;
            var body = row.querySelector('.body');
            var struck = body ? getComputedStyle(body).textDecorationLine.indexOf('line-through') !== -1 : false;
            return [row.textContent.slice(ts.length), struck];
        });""")


def expected_at(seconds: float) -> list[list[Any]]:
    return [[text, REMOVED_AT.get(t, 1e9) <= seconds] for t, text in SHOWN if t <= seconds]


@pytest.mark.integration
@needs_chromium
class TestInChromium:
    def test_seeking_shows_exactly_what_was_sent_by_then(self, browser: Any, exported: Path) -> None:
        open_page(browser, exported.as_uri())
        assert rows(browser) == []  # the page opens at the window's start
        for seconds in (4.9, 5, 12, 29.9, 30, 35, 45, 57, 65, 85, 120, 0):
            seek(browser, seconds)
            assert rows(browser) == expected_at(seconds), seconds
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    def test_removed_messages_are_struck_from_their_moment(self, browser: Any, exported: Path) -> None:
        open_page(browser, exported.as_uri() + "#t=39.9")
        assert [struck for _, struck in rows(browser)] == [False] * 4
        seek(browser, 40)
        assert [struck for _, struck in rows(browser)] == [False, False, False, True]
        seek(browser, 61)
        assert [struck for _, struck in rows(browser)] == [False, False, False, True, True, True]

    def test_search_filters_by_user_or_text(self, browser: Any, exported: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        open_page(browser, exported.as_uri() + "#t=120")
        box = browser.find_element(By.ID, "search")
        for query, wanted in (("DAVE", [50, 55]), ("timeout", [70]), ("erin", [80, 90]), ("zzz", [])):
            box.clear()
            box.send_keys(query)
            texts = [text for t, text in SHOWN if t in wanted]
            WebDriverWait(browser, 5).until(lambda d, texts=texts: [t for t, _ in rows(d)] == texts)
        box.clear()
        box.send_keys(" ")  # only blanks: no filter
        WebDriverWait(browser, 5).until(lambda d: len(rows(d)) == len(SHOWN))

    def test_keyboard_plays_pauses_and_steps(self, browser: Any, exported: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        open_page(browser, exported.as_uri())
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.ARROW_RIGHT)
        body.send_keys(Keys.ARROW_RIGHT)
        assert browser.find_element(By.ID, "slider").get_attribute("value") == "10000"
        assert rows(browser) == expected_at(10)
        body.send_keys(Keys.SHIFT, Keys.ARROW_RIGHT)
        assert browser.find_element(By.ID, "slider").get_attribute("value") == "70000"
        body.send_keys(Keys.ARROW_LEFT)
        assert rows(browser) == expected_at(65)
        body.send_keys(Keys.ARROW_UP)  # faster: 2x
        body.send_keys(" ")
        assert browser.find_element(By.ID, "play").text == "Pause"
        WebDriverWait(browser, 5).until(lambda d: len(rows(d)) == len(expected_at(70)))
        body.send_keys(" ")
        assert browser.find_element(By.ID, "play").text == "Play"
        paused = browser.find_element(By.ID, "slider").get_attribute("value")
        assert int(paused) > 65000
        body.send_keys(Keys.END)
        assert rows(browser) == expected_at(120)
        assert "2023-11-14 22:15:20 UTC" in browser.find_element(By.ID, "clock").text  # 1700000120, with its date

    def test_colours_badges_and_a_screenshot(self, browser: Any, exported: Path) -> None:
        open_page(browser, exported.as_uri() + "#t=120")
        colors = browser.execute_script("""
            return Array.from(document.querySelectorAll('#rows .name')).map(function (n) {
                return [n.textContent, getComputedStyle(n).color]; });""")

        def rgb(hex_color: str) -> str:
            return "rgb({}, {}, {})".format(*(int(hex_color[i : i + 2], 16) for i in (1, 3, 5)))

        assert colors[0] == ["Alice", rgb("#1E90FF")]
        assert ["Erin", rgb(stable_color("erin"))] in colors  # the same stable colour as the ass export
        assert browser.execute_script("return document.querySelector('#rows .badge').textContent") == "moderator"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "player.png"))
        assert (ARTIFACTS / "player.png").stat().st_size > 1000

    def test_the_page_fed_from_a_url_shows_the_same(self, browser: Any, exported: Path, tmp_path: Path) -> None:
        """As `serve` will use it: the page without data, fetching the window's jsonl export."""
        result = CliRunner().invoke(
            app,
            [
                "export",
                str(exported.parent / "archive"),
                "chan",
                "--since",
                str(S),
                "--until",
                str(S + 120),
                "--format",
                "jsonl",
            ],
        )
        assert result.exit_code == 0, result.output
        site = tmp_path / "site"
        site.mkdir()
        (site / "chat.jsonl").write_text(result.stdout)
        (site / "index.html").write_text(render_page(source_url="chat.jsonl", title="t", start=S, end=S + 120))
        assert all(canonical_json(json.loads(line)) == line for line in result.stdout.splitlines())

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            open_page(browser, f"http://127.0.0.1:{server.server_address[1]}/index.html#t=45")
            assert rows(browser) == expected_at(45)
            seek(browser, 120)
            assert rows(browser) == expected_at(120)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


@pytest.mark.integration
@needs_chromium
def test_runs_of_spaces_show_as_typed(browser: Any, tmp_path: Path) -> None:
    """The archive keeps a message's spaces; the page shows them, not collapsed to one."""
    typed = "a     b  c"
    record = {
        "command": "PRIVMSG",
        "params": ["#chan", typed],
        "sender": "v",
        "user": "v",
        "host": "v.tmi.twitch.tv",
        "tags": {"id": "id-spaces", "display-name": "V"},
        "receivers": {"h.s.0": S + 5.5},
        "time": S + 5,
        "time_range": 0,
    }
    write_batch(str(tmp_path / "archive"), "chan", batch_time_of(S + 5), [record])
    out = tmp_path / "chat.html"
    window = ["--since", str(S), "--until", str(S + 60), "--format", "html", "--out", str(out)]
    assert CliRunner().invoke(app, ["export", str(tmp_path / "archive"), "chan", *window]).exit_code == 0
    open_page(browser, out.as_uri() + "#t=30")
    shown = browser.execute_script("return document.querySelector('#rows .row .body').innerText")
    assert shown == ": " + typed


@pytest.mark.integration
@needs_chromium
def test_a_silent_stretch_says_where_the_chat_goes_on(browser: Any, tmp_path: Path) -> None:
    def said(t: float, n: int) -> dict[str, Any]:
        return {
            "command": "PRIVMSG",
            "params": ["#chan", f"message {n}"],
            "sender": "v",
            "user": "v",
            "host": "v.tmi.twitch.tv",
            "tags": {"id": f"id-{n}", "display-name": "V"},
            "receivers": {"h.s.0": t + 0.5},
            "time": t,
            "time_range": 0,
        }

    for n, t in enumerate((S + 5, S + 600)):
        write_batch(str(tmp_path / "archive"), "chan", batch_time_of(t), [said(t, n)])
    out = tmp_path / "chat.html"
    window = ["--since", str(S), "--until", str(S + 900), "--format", "html", "--out", str(out)]
    assert CliRunner().invoke(app, ["export", str(tmp_path / "archive"), "chan", *window]).exit_code == 0
    status = {}
    for t in (2, 30, 300, 700):
        open_page(browser, out.as_uri() + f"#t={t}")
        status[t] = browser.execute_script("return document.getElementById('status').textContent")
    assert status == {
        2: "0 of 2 messages \u00b7 quiet here; next message at +0:00:05",
        30: "1 of 2 messages",  # a message within the last minute: not quiet
        300: "1 of 2 messages \u00b7 quiet here; next message at +0:10:00",
        700: "2 of 2 messages",
    }


# --- hostile text and fragments ---------------------------------------------------------------------

RLO = "\u202e"


@pytest.fixture(scope="module")
def bidi_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows whose user text holds a right-to-left override: in a name, a message, a reply's quote."""
    records = [
        play_message(0, S + 1, "mallory", "hello there", **{"display-name": RLO + "Mallory"}),
        play_message(1, S + 2, "bob", RLO + "reversed text"),
        play_message(
            2,
            S + 3,
            "carol",
            "my own words",
            **{"reply-parent-display-name": "Bob", "reply-parent-msg-body": RLO + "abc"},
        ),
        play_message(3, S + 4, "dave", "plain row"),
    ]
    out = tmp_path_factory.mktemp("bidi") / "chat.html"
    out.write_text(render_page(records, title="bidi", start=S, end=S + 10), encoding="utf-8")
    return out


def boxes(driver: Any) -> list[dict[str, float]]:
    """Per row on screen, the left and right edges of its parts (name, body, reply)."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#rows .row')).map(function (row) {
            var out = {};
            ['name', 'body', 'reply'].forEach(function (cls) {
                var el = row.querySelector('.' + cls);
                if (el) { var r = el.getBoundingClientRect(); out[cls + 'L'] = r.left; out[cls + 'R'] = r.right; }
            });
            return out;
        });""")


@pytest.mark.integration
@needs_chromium
class TestHostileTextInChromium:
    def test_a_right_to_left_override_reorders_only_its_own_text(self, browser: Any, bidi_page: Path) -> None:
        open_page(browser, bidi_page.as_uri() + "#t=10")
        shown = boxes(browser)
        assert len(shown) == 4
        for i, row in enumerate(shown):  # left to right: (reply,) name, body, as in any row
            assert row["nameR"] <= row["bodyL"] + 0.5, (i, row)
            if "replyL" in row:
                assert row["replyR"] <= row["nameL"] + 0.5, (i, row)
        assert [t for t, _ in rows(browser)][3] == "Dave: plain row"

    @pytest.mark.parametrize("fragment", ["#t=1.2.3", "#t=-5", "#t=Infinity", "#t=1e400", "#t=", "#t=NaN", "#t=0x10"])
    def test_a_malformed_time_fragment_is_ignored(self, browser: Any, exported: Path, fragment: str) -> None:
        open_page(browser, exported.as_uri() + fragment)  # ready, no error: the page opens at the start
        assert "NaN" not in browser.find_element("id", "clock").text
        assert rows(browser) == []
        seek(browser, 12)  # and it still plays
        assert rows(browser) == expected_at(12)
        browser.execute_script("location.hash = '#t=2.5.1'")  # a bad one later moves nothing
        assert rows(browser) == expected_at(12)
        browser.execute_script("location.hash = '#t=30'")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 5).until(lambda d: rows(d) == expected_at(30))

"""serve's answers, by calling the WSGI app directly (no socket): the routes, their exact bodies,
and the safety rules over any request path and query string (hypothesis)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from profiles import examples, suppressing

from fixtures.export import make_archive
from formats.canonical import canonical_bytes
from serve.app import ChatApp, spaced_slowly, upstream_joined, upstream_joined_py
from tests.compiled import Core, compiled_only, native
from tests.strategies import archive_records, query_strings, request_paths

FIXTURE = Path(__file__).parent.parent / "fixtures" / "export"
ARCHIVE = FIXTURE / "archive"
HOUR = "2023-11-14T22"
EDITOR_WINDOW = "start=2023-11-14T22:13:30.000&end=2023-11-14T22:16:00.000"  # the golden export's window


def call(
    app: ChatApp, path: str, query: str = "", method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request as a WSGI server hands it over: PATH_INFO percent-decoded, as latin-1 text."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    for key, value in (headers or {}).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    got: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        got["status"] = int(status.split(maxsplit=1)[0])
        got["headers"] = dict(response_headers)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]  # as a WSGI server must
    return got["status"], got["headers"], body


@pytest.fixture(scope="module")
def app() -> ChatApp:
    return ChatApp(str(ARCHIVE))


def test_listings_are_upstreams_json_arrays(app: ChatApp) -> None:
    names = sorted(os.listdir(ARCHIVE / "desertbus" / "chat" / HOUR))
    status, headers, body = call(app, "/files")
    assert (status, body) == (200, b'["desertbus"]')
    assert headers["Content-Type"] == "application/json" and headers["Content-Length"] == "13"
    assert headers["Access-Control-Allow-Origin"] == "*"  # as upstream: an editor on another origin reads it
    assert call(app, "/files/desertbus")[2] == b'["chat"]'
    assert call(app, "/files/desertbus/chat")[2] == b'["2023-11-14T22"]'
    listing = call(app, f"/files/desertbus/chat/{HOUR}", "tombstones=true")
    assert listing[0] == 200 and listing[2] == json.dumps(names).encode()  # `, ` between names, as json.dumps
    assert b'", "' in listing[2]
    # upstream: a folder that is not there lists as []
    assert call(app, "/files/nobody")[2] == b"[]"
    assert call(app, "/files/nobody/chat")[2] == b"[]"
    assert call(app, "/files/desertbus/chat/2020-01-01T00")[2] == b"[]"
    status, headers, body = call(app, f"/files/desertbus/chat/{HOUR}", "tombstones=maybe")
    assert (status, body) == (400, b"tombstones must be one of: true, false")
    assert headers["Content-Type"] == "text/plain; charset=utf-8" and headers["Content-Length"] == "38"


def test_chat_json_is_the_hand_checked_window_as_upstream_prints_it(app: ChatApp) -> None:
    status, headers, body = call(app, "/desertbus/chat.json", EDITOR_WINDOW)
    assert status == 200 and headers["Content-Type"] == "application/json"
    expected = json.loads((FIXTURE / "expected" / "window.json").read_bytes())  # checked by hand
    assert json.loads(body) == expected
    assert body == json.dumps(expected).encode()  # upstream answers json.dumps(messages)


def test_chat_jsonl_is_the_hand_checked_window_in_canonical_lines(app: ChatApp) -> None:
    status, _, body = call(app, "/desertbus/chat.jsonl", "start=1700000010&end=2023-11-14T22:16:00Z")
    assert status == 200
    assert body == (FIXTURE / "expected" / "window.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("start=2023-11-14T22:00:00&end=2023-11-15T00:00:00.001", b"Cannot request more than 2h of chat"),
        ("start=2023-11-14T22:00:00&end=2023-11-14T22:00:00", b"End must be after start"),
        ("start=2023-11-14T23:00:00&end=2023-11-14T22:00:00", b"End must be after start"),
        ("start=yesterday&end=2023-11-14T22:00:00", b"Invalid timestamp"),
        ("start=2023-11-14T22:00:00", b"Params start and end are required, once each"),
        ("start=nan&end=inf", b"Invalid timestamp"),
        ("start=0001-01-01T00:00:00&end=0001-01-01T01:00:00", b"Invalid timestamp"),
    ],
)
def test_chat_json_errors_are_400_with_one_line(app: ChatApp, query: str, reason: bytes) -> None:
    status, headers, body = call(app, "/desertbus/chat.json", query)
    assert (status, body) == (400, reason)
    assert headers["Content-Type"].startswith("text/plain")


def test_exactly_two_hours_is_allowed_and_jsonl_has_no_cap(app: ChatApp) -> None:
    assert call(app, "/desertbus/chat.json", "start=2023-11-14T22:00:00&end=2023-11-15T00:00:00")[0] == 200
    status, _, body = call(app, "/desertbus/chat.jsonl", "start=2023-11-14T00:00:00&end=2023-11-16T00:00:00")
    assert status == 200 and body.count(b"\n") > 5


def test_window_of_a_channel_that_is_not_there_is_404(app: ChatApp) -> None:
    assert call(app, "/nobody/chat.json", EDITOR_WINDOW)[0] == 404
    assert call(app, "/nobody/chat.jsonl", EDITOR_WINDOW)[0] == 404


def test_segment_has_strong_etag_and_long_cache_and_honours_if_none_match(app: ChatApp) -> None:
    name = sorted(os.listdir(ARCHIVE / "desertbus" / "chat" / HOUR))[0]
    status, headers, body = call(app, f"/segments/desertbus/chat/{HOUR}/{name}")
    assert status == 200 and body == (ARCHIVE / "desertbus" / "chat" / HOUR / name).read_bytes()
    assert headers["ETag"] == f'"{name[6:-5]}"'
    assert "immutable" in headers["Cache-Control"] and "max-age=31536000" in headers["Cache-Control"]
    for tag in (headers["ETag"], f'"x", {headers["ETag"]}', f"W/{headers['ETag']}", "*"):
        again = call(app, f"/segments/desertbus/chat/{HOUR}/{name}", headers={"If-None-Match": tag})
        assert again[0] == 304 and again[2] == b"" and again[1]["ETag"] == headers["ETag"]
    other = call(app, f"/segments/desertbus/chat/{HOUR}/{name}", headers={"If-None-Match": '"other"'})
    assert other[0] == 200
    assert call(app, f"/segments/desertbus/chat/{HOUR}/{name}", method="HEAD")[2] == b""
    assert call(app, f"/segments/desertbus/chat/{HOUR}/00:00-{'A' * 43}.json")[0] == 404  # merged away


def test_metrics_and_health(app: ChatApp) -> None:
    call(app, "/files")
    status, headers, body = call(app, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b'chat_serve_requests_total{route="ListChannels",status="200"}' in body
    assert call(app, "/healthz")[:1] == (200,)
    assert call(ChatApp(str(ARCHIVE / "missing")), "/healthz")[0] == 503


def test_other_methods_are_405(app: ChatApp) -> None:
    status, headers, _ = call(app, "/files", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


# -- nothing outside ROOT, never a 500 -------------------------------------------------------------

SECRET = b"SECRET-OUTSIDE-ROOT"


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden archive plus symlinks out of ROOT (a channel, an hour, a batch file) and a secret
    beside ROOT, and one inside a hidden folder."""
    base = tmp_path_factory.mktemp("hostile")
    root = base / "root"
    make_archive.build(str(root))
    outside = base / "outside"
    (outside / "chat" / HOUR).mkdir(parents=True)
    secret_name = f"14:00-{'S' * 43}.json"
    (outside / "chat" / HOUR / secret_name).write_bytes(SECRET)
    (base / "passwd").write_bytes(SECRET)
    (root / "evil").symlink_to(outside)  # a channel folder that leads out
    (root / "desertbus" / "chat" / "2023-11-14T23").symlink_to(outside / "chat" / HOUR)  # an hour
    (root / "desertbus" / "chat" / HOUR / secret_name).symlink_to(outside / "chat" / HOUR / secret_name)
    (root / ".sync").mkdir()
    (root / ".sync" / "x").write_bytes(SECRET)
    return root


def test_symlinks_out_of_root_are_404(hostile_root: Path) -> None:
    app = ChatApp(str(hostile_root))
    secret_name = f"14:00-{'S' * 43}.json"
    for path in (
        f"/segments/evil/chat/{HOUR}/{secret_name}",
        f"/segments/desertbus/chat/{HOUR}/{secret_name}",
        f"/segments/desertbus/chat/2023-11-14T23/{secret_name}",
    ):
        assert call(app, path)[0] == 404, path
    assert call(app, "/files/evil/chat")[2] == b"[]"
    assert call(app, "/files/desertbus/chat/2023-11-14T23")[2] == b"[]"


@settings(suppress_health_check=suppressing(HealthCheck.function_scoped_fixture))
@given(path=request_paths, query=query_strings)
@example(path="/segments/../../passwd", query="")
@example(path="/files/%2e%2e/%2e%2e", query="")
@example(path="/%2e%2e%2fpasswd/chat.json", query="start=1&end=2")
@example(path="/files/desertbus/chat/2023-11-14T22/%00", query="tombstones=true")
@example(path="/desertbus/chat.json", query="start=2023-11-14T22:13:30.000&end=2023-11-14T22:13:30.000%00")
@example(path="/desertbus/chat.jsonl", query="start=-1e308&end=9999-12-31T23:59:59")
def test_any_request_is_answered_without_a_500_and_nothing_outside_root(
    hostile_root: Path, path: str, query: str
) -> None:
    app = ChatApp(str(hostile_root))
    try:
        status, _headers, body = call(app, path, query)
    except UnicodeEncodeError:
        return  # not something a server can hand over (PATH_INFO is latin-1)
    assert status in (200, 304, 400, 403, 404, 405, 503), (status, body)  # 503: the links out, refused
    assert SECRET not in body
    if status != 200:
        assert b"\n" not in body and b"Traceback" not in body


@given(record=archive_records())
@example(
    record={
        "command": "PRIVMSG",
        "params": ["#c", 'say "hi", ok: \\"x\\" \\'],
        "sender": None,
        "user": None,
        "host": None,
        "tags": {"a:b": "c,d", "q": '"'},
        "receivers": {"h": 1e-05},
        "time": 1700000000.5,
        "time_range": 0,
    }
)
def test_chat_json_records_print_as_upstreams_json_dumps(record: dict[str, Any]) -> None:
    """One record's canonical line, spaced as upstream's json.dumps prints it."""
    assert upstream_joined([canonical_bytes(record)]) == json.dumps(record, sort_keys=True).encode()


@given(records=st.lists(archive_records(), max_size=6))
def test_lines_joined_at_once_print_as_upstreams_json_dumps_of_the_list(records: list[dict[str, Any]]) -> None:
    """chat.json is written a few thousand canonical lines at a time: each run of them is the
    middle of upstream's `json.dumps(records)` (without its brackets)."""
    expected = json.dumps(records, sort_keys=True).encode()[1:-1]
    assert upstream_joined([canonical_bytes(r) for r in records]) == expected


def _joined(core: Core) -> Any:
    """`upstream_joined` of one core (the compiled one told its reference, as `speedups.twin` does)."""
    if core.name == "compiled":
        native().configure_upstream_joined(upstream_joined_py)
    return core.twin(upstream_joined_py, "upstream_joined")


@given(records=st.lists(archive_records(), max_size=6))
def test_both_cores_print_lines_as_upstreams_json_dumps_of_the_list(core: Core, records: list[dict[str, Any]]) -> None:
    expected = json.dumps(records, sort_keys=True).encode()[1:-1]
    assert _joined(core)([canonical_bytes(r) for r in records]) == expected


@compiled_only
@given(lines=st.lists(st.binary(max_size=40) | st.sampled_from([b'"a\\",:', b'\\"', b"\\", b'":,"']), max_size=6))
@example(lines=[b'"\\', b'"'])
@example(lines=[b"\\,"])
@example(lines=[b'"\\\x01"'])
@example(lines=[])
@example(lines=[b""])
def test_the_compiled_twin_equals_the_reference_on_any_bytes(core: Core, lines: list[bytes]) -> None:
    """Odd bytes too (placeholders, a backslash outside a string, an open string): the twin hands
    what it does not read to the reference, so both give the same bytes."""
    assert _joined(core)(lines) == upstream_joined_py(lines)


# runs of plain bytes with a few that matter anywhere in them: the twin reads 64 bytes at a time
blocks = st.lists(
    st.sampled_from([b"a", b"a" * 7, b"b" * 30, b'"', b"\\", b",", b":", b"\x01", b"\x80", b"\xff"]), max_size=60
)


@compiled_only
@settings(max_examples=examples(4))
@given(lines=st.lists(blocks.map(b"".join), max_size=3))
def test_the_compiled_twin_equals_the_reference_wherever_a_byte_that_matters_falls(
    core: Core, lines: list[bytes]
) -> None:
    """Quotes, backslashes, separators and placeholder bytes at every place in and around the
    blocks of 64 bytes the twin reads at once."""
    assert _joined(core)(lines) == upstream_joined_py(lines)


@compiled_only
@pytest.mark.parametrize("inside", [False, True])
@pytest.mark.parametrize("byte", [b'"', b"\\", b",", b":", b"\x00", b"\x01", b"\x02", b"\x03", b"\xff"])
def test_the_compiled_twin_sees_each_byte_that_matters_at_each_place_of_two_blocks(
    core: Core, byte: bytes, inside: bool
) -> None:
    for at in range(130):
        line = (b'"' if inside else b"") + b"a" * at + byte + b"b" * 70
        assert _joined(core)([line, line]) == upstream_joined_py([line, line]), line


@given(lines=st.lists(st.binary(max_size=40) | st.sampled_from([b'"a\\",:', b'\\"', b"\\", b'":,"']), max_size=6))
def test_the_fast_reference_is_the_byte_walk_wherever_it_runs(lines: list[bytes]) -> None:
    """The split at quotes (with placeholders for escapes) gives what the byte walk defines, on any
    bytes that do not hold the placeholders."""
    lines = [line.translate(None, b"\x00\x01\x02") for line in lines]
    assert upstream_joined_py(lines) == spaced_slowly(b",".join(lines))


@pytest.mark.parametrize(
    "text",
    ["\\", '\\"', '"\\', ",", ":", '","', '":"', '\\\\":', 'a\\,b"c:d', "\x7f\u202e\U0001f600,:"],
)
def test_escapes_and_separators_inside_strings_stay_as_they_are(text: str) -> None:
    records = [{"k": text, text: [text, 1, {"x": text}]}, {"a": 1.5, "b": [None, True]}]
    expected = json.dumps(records, sort_keys=True).encode()[1:-1]
    assert upstream_joined([json.dumps(r, sort_keys=True, separators=(",", ":")).encode() for r in records]) == expected


def test_a_damaged_file_in_the_window_is_skipped_and_logged_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As `export` does: the answer is upstream's rule over every readable file; the damaged file
    is named once in the log."""
    from tests.test_export_golden import upstream_rule

    root, readable = tmp_path / "a", tmp_path / "b"
    make_archive.build(str(root))
    make_archive.build(str(readable))
    name = sorted(os.listdir(root / "desertbus" / "chat" / HOUR))[0]
    (root / "desertbus" / "chat" / HOUR / name).write_bytes(b'{"broken": \n')
    (readable / "desertbus" / "chat" / HOUR / name).unlink()
    status, _, body = call(ChatApp(str(root)), "/desertbus/chat.jsonl", EDITOR_WINDOW)
    assert status == 200
    expected = upstream_rule(str(readable), "desertbus", make_archive.START, make_archive.END)
    assert [json.loads(line) for line in body.splitlines()] == expected
    warnings = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1 and f"desertbus/chat/{HOUR}/{name}:" in warnings[0]
    assert str(tmp_path) not in warnings[0]  # the server's own folders are nobody's business


def test_a_window_read_is_never_led_out_of_root_by_a_link(hostile_root: Path) -> None:
    app = ChatApp(str(hostile_root))
    assert call(app, "/evil/chat.jsonl", "start=2023-11-14T22:00:00&end=2023-11-14T23:30:00")[0] == 404
    for path in ("/desertbus/chat.json", "/desertbus/chat.jsonl"):
        status, _, body = call(app, path, "start=2023-11-14T22:00:00&end=2023-11-14T23:30:00")
        assert status == 503 and b"leads outside the archive" in body and SECRET not in body
    status, _, body = call(app, "/nobody/chat.json", EDITOR_WINDOW)
    assert (status, body) == (404, b"Not found: no chat for channel nobody")


def test_player_page_is_fed_from_the_uncapped_jsonl_route_and_the_browser_links_hours() -> None:
    asked: list[dict[str, Any]] = []

    def player(**kw: Any) -> str:
        asked.append(kw)
        return "<!doctype html><title>player</title>"

    app = ChatApp(str(ARCHIVE), player=player)
    status, headers, body = call(app, "/player/desertbus", "start=2023-11-14T22:00:00&end=2023-11-15T02:00:00")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and body.startswith(b"<!doctype")
    source = asked[0]["source_url"]
    assert asked[0]["start"] == 1699999200 and asked[0]["end"] == 1700013600
    assert source == "/desertbus/chat.jsonl?start=1699999200&end=1700013600"
    path, _, query = source.partition("?")
    status, _, lines = call(app, path, query)  # what the page will fetch: the window, uncapped (4 h)
    assert status == 200 and all(json.loads(line)["time"] >= 1699999200 - 60 for line in lines.splitlines())
    assert call(app, "/player/desertbus", "start=nope&end=1")[0] == 400
    status, _, page = call(app, "/")
    assert status == 200 and b'href="/player/desertbus?start=1699999200&amp;end=1700002800"' in page
    without = ChatApp(str(ARCHIVE), player=None)
    if without.player is None:  # no player in this tree: the page says so, the browser still lists
        assert call(without, "/player/desertbus", "start=1&end=2")[0] == 404
        assert b"/player/" not in call(without, "/")[2] and b"chat.jsonl" in call(without, "/")[2]


def test_the_real_player_page_points_at_our_jsonl() -> None:
    html = pytest.importorskip("export.html")
    app = ChatApp(str(ARCHIVE), player=html.render_page)
    status, _, body = call(app, "/player/desertbus", "start=2023-11-14T22:00:00&end=2023-11-14T23:00:00")
    assert status == 200 and b"/desertbus/chat.jsonl?start=1699999200&end=1700002800" in body


def test_window_reads_beyond_the_slots_are_503_and_listings_still_answer() -> None:
    app = ChatApp(str(ARCHIVE), window_reads=1)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/desertbus/chat.jsonl", "QUERY_STRING": EDITOR_WINDOW}
    first = app(dict(environ), lambda status, headers: None)  # holds the slot until closed, read or not
    status, headers, body = call(app, "/desertbus/chat.json", EDITOR_WINDOW)
    assert status == 503 and headers["Retry-After"] == "5" and b"try again" in body
    assert call(app, "/files")[0] == 200
    first.close()  # type: ignore[attr-defined]
    assert call(app, "/desertbus/chat.json", EDITOR_WINDOW)[0] == 200
    assert call(app, "/desertbus/chat.json", EDITOR_WINDOW)[0] == 200  # a finished read gave its slot back


def test_a_window_of_centuries_reads_only_the_hours_that_exist(app: ChatApp) -> None:
    """Work follows the archive, not the window a client claims: a jsonl window from 2000 to 9999
    over two days of chat is answered at once, with exactly the records of those two days."""
    days = call(app, "/desertbus/chat.jsonl", "start=2023-11-14T00:00:00&end=2023-11-16T00:00:00")
    centuries = call(app, "/desertbus/chat.jsonl", "start=2000-01-01T00:00:00&end=9999-12-30T00:00:00")
    assert centuries[0] == days[0] == 200
    assert centuries[2] == days[2] and days[2].count(b"\n") > 5

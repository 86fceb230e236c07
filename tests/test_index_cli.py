"""`chat-archiver index` and `search`, run as a user runs them (stdout and stderr apart)."""

from __future__ import annotations

import json
import os
from typing import Any

from typer.testing import CliRunner

from chat_archiver.cli import app
from index import open_index
from tests.strategies import INDEX_T0, index_record
from tests.test_index import _msg, fresh_root, write_archive

runner = CliRunner()


def _archive() -> str:
    t = float(INDEX_T0)
    root = fresh_root()
    write_archive(
        root,
        [
            _msg(1, t, "alice", "1", "hello Kappa world"),
            _msg(2, t + 1, "bob", "2", "\x01ACTION waves Kappa\x01"),
            _msg(3, t + 86400, "alice", "1", "good run \x1b]0;evil\x07"),
            (
                "chan",
                index_record(
                    "CLEARMSG", t + 2, {"target-msg-id": "id2", "login": "bob"}, ["#chan", "x"], "tmi.twitch.tv"
                ),
            ),
        ],
    )
    return root


def test_index_then_search_by_words_user_window_and_order() -> None:
    root = _archive()
    result = runner.invoke(app, ["index", root])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "3 messages indexed" in result.stderr
    assert os.path.exists(os.path.join(root, ".index.sqlite"))
    result = runner.invoke(app, ["search", root, "--text", "KAPPA"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "[2023-11-14 22:13:21] #chan bob: * waves Kappa (removed)",
        "[2023-11-14 22:13:20] #chan alice: hello Kappa world",
    ]
    result = runner.invoke(app, ["search", root, "--user", "Alice", "--oldest-first", "--format", "jsonl"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["hello Kappa world", "good run \x1b]0;evil\x07"]
    assert rows[0]["timestamp"] == "2023-11-14T22:13:20.000Z" and rows[0]["tags"]["user-id"] == "1"
    result = runner.invoke(app, ["search", root, "--since", "2023-11-15", "--format", "text"])
    assert result.stdout == "[2023-11-15 22:13:20] #chan alice: good run \\x1b]0;evil\\x07\n"  # escapes shown, not run
    result = runner.invoke(app, ["search", root, "-c", "#CHAN", "--limit", "1", "--format", "json"])
    assert [r["login"] for r in json.loads(result.stdout)] == ["alice"]
    result = runner.invoke(app, ["search", root, "--text", "nothing-like-this"])
    assert result.exit_code == 0 and result.stdout == "" and "no messages match" in result.stderr


def test_search_builds_the_index_when_there_is_none_and_sees_new_files() -> None:
    root = _archive()
    assert runner.invoke(app, ["search", root, "--text", "good"]).stdout.count("\n") == 1
    write_archive(root, [_msg(9, INDEX_T0 + 600.0, "carol", "3", "good too")])
    assert runner.invoke(app, ["search", root, "--text", "good"]).stdout.count("\n") == 2
    write_archive(root, [_msg(10, INDEX_T0 + 700.0, "carol", "3", "good three")])
    assert runner.invoke(app, ["search", root, "--text", "good", "--no-update"]).stdout.count("\n") == 2


def test_usage_errors_exit_2_with_one_line() -> None:
    root = _archive()
    result = runner.invoke(app, ["search", root, "--since", "2023-11-15", "--until", "2023-11-14"])
    assert result.exit_code == 2 and "the window is empty" in result.stderr
    result = runner.invoke(app, ["search", root, "--text", " ".join(f"w{i}" for i in range(40))])
    assert result.exit_code == 2 and "too many search terms" in result.stderr
    result = runner.invoke(app, ["search", os.path.join(root, "missing")])
    assert result.exit_code == 2 and "no such folder" in result.stderr
    result = runner.invoke(app, ["index", root, "--db", "postgresql://me:hunter2@127.0.0.1:1/chat"])
    assert result.exit_code == 2 and "cannot connect" in result.stderr
    assert "hunter2" not in result.output


def test_a_damaged_batch_file_exits_1_and_the_rest_is_indexed() -> None:
    root = _archive()
    bad = os.path.join(root, "chan", "chat", "2023-11-14T22", "15:00-" + "B" * 43 + ".json")
    with open(bad, "wb") as f:
        f.write(b"not json\n")
    result = runner.invoke(app, ["index", root])
    assert result.exit_code == 1 and f"{bad}:1" in result.stderr and "3 messages indexed" in result.stderr


def test_a_damaged_index_file_is_rebuilt_by_index_and_by_search() -> None:
    root = _archive()
    assert runner.invoke(app, ["index", root]).exit_code == 0
    with open(os.path.join(root, ".index.sqlite"), "wb") as f:
        f.write(b"garbage" * 1000)
    result = runner.invoke(app, ["search", root, "--text", "world"])
    assert result.exit_code == 0 and "rebuilding it" in result.stderr and result.stdout.count("\n") == 1
    with open(os.path.join(root, ".index.sqlite"), "wb") as f:
        f.write(b"garbage" * 1000)
    result = runner.invoke(app, ["index", root])
    assert result.exit_code == 0 and "3 messages indexed" in result.stderr
    result = runner.invoke(app, ["index", root, "--rebuild"])
    assert result.exit_code == 0 and "rebuilt" in result.stderr


def test_other_readers_ignore_the_index_file() -> None:
    root = _archive()
    assert runner.invoke(app, ["index", root]).exit_code == 0
    result = runner.invoke(app, ["verify", root])
    assert result.exit_code == 0, result.output


def test_the_live_follower_keeps_the_index_current() -> None:
    """`replay --follow --index` (what `archive` runs): each merged minute is searchable at once."""
    import shutil
    import tempfile

    work = tempfile.mkdtemp()
    raw = os.path.join(work, "host1.jsonl")
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "fixtures", "cases", "twitch_full", "host1.jsonl"), raw)
    out = os.path.join(work, "out")
    result = runner.invoke(app, ["replay", raw, "-o", out, "--follow", "--until-idle", "--idle", "0", "--index"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["search", out, "--no-update", "--user", "dave", "--format", "jsonl"])
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["spaced   out  text"]
    exported = runner.invoke(app, ["search", out, "--no-update", "--limit", "0"]).stdout.count("\n")
    rebuilt = runner.invoke(app, ["index", out, "--rebuild"])
    assert rebuilt.exit_code == 0
    assert runner.invoke(app, ["search", out, "--no-update", "--limit", "0"]).stdout.count("\n") == exported > 0


def test_index_options_outside_follow_are_refused() -> None:
    result = runner.invoke(app, ["replay", "raw/", "-o", "out/", "--index"])
    assert result.exit_code == 2 and "--index and --index-db go with --follow" in result.stderr


def test_serve_never_prints_the_index_password() -> None:
    """`serve --index` with a PostgreSQL URL that cannot be used (or a mistyped scheme) says so
    without the URL's password, in the URL and in the connection error."""
    root = _archive()
    result = runner.invoke(app, ["serve", root, "--index", "postgresql://u:hunter2@127.0.0.1:1/x"])
    assert result.exit_code == 2 and "cannot use the index postgresql://u@127.0.0.1:1/x" in result.stderr
    assert "hunter2" not in result.output
    result = runner.invoke(app, ["serve", root, "--index", "postgress://u:hunter2@127.0.0.1:1/x"])
    assert result.exit_code == 2 and "no such index" in result.stderr
    assert "hunter2" not in result.output


def test_scrub_takes_the_password_out_of_an_error_that_echoes_the_connection_string() -> None:
    from index import scrub_url

    url = "postgresql://u:hunter2@127.0.0.1:1/x"
    said = scrub_url(f"invalid connection option in {url}; password=hunter2 host=127.0.0.1", url)
    assert "hunter2" not in said and "postgresql://u@127.0.0.1:1/x" in said


def test_archive_hands_the_index_url_to_its_follower_in_the_environment() -> None:
    """`archive --index-db URL`: the follower's command line (visible in `ps`) holds no password;
    the URL is in its environment, and `replay --follow --index` uses it from there."""
    import shutil
    import tempfile
    from pathlib import Path

    from chat_archiver.cmd_archive import INDEX_DB_ENV, follower_spec

    url = "postgresql://u:hunter2@127.0.0.1:1/x"
    spec = follower_spec(["chat-archiver"], Path("raw"), Path("archive"), Path("state"), idle=5, index=True, db=url)
    assert "--index" in spec.argv and not any("hunter2" in a for a in spec.argv)
    assert spec.env is not None and spec.env[INDEX_DB_ENV] == url
    spec = follower_spec(["chat-archiver"], Path("raw"), Path("archive"), Path("state"), idle=5, index=True, db=None)
    assert spec.env is not None and INDEX_DB_ENV not in spec.env

    work = tempfile.mkdtemp()
    raw = os.path.join(work, "host1.jsonl")
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "fixtures", "cases", "twitch_full", "host1.jsonl"), raw)
    out, db = os.path.join(work, "out"), os.path.join(work, "elsewhere.sqlite")
    args = ["replay", raw, "-o", out, "--follow", "--until-idle", "--idle", "0", "--index"]
    result = runner.invoke(app, args, env={INDEX_DB_ENV: db})
    assert result.exit_code == 0, result.output
    assert os.path.isfile(db) and not os.path.exists(os.path.join(out, ".index.sqlite"))


def test_an_index_url_with_a_password_is_warned_about_without_the_password() -> None:
    result = runner.invoke(
        app,
        ["replay", "raw/", "-o", "out/", "--follow", "--index", "--index-db", "postgresql://u:hunter2@127.0.0.1:1/x"],
    )
    assert "PGPASSWORD or ~/.pgpass" in result.stderr and "hunter2" not in result.output


def test_a_failed_index_pass_keeps_its_minutes_for_the_next() -> None:
    """The follower's index thread: a pass that fails (the index unreachable a moment) puts its
    minutes back and tries them again, rather than dropping them until the next restart."""
    import threading

    from chat_archiver.cmd_archive import IndexUpdater
    from index import IndexUnavailable

    root = _archive()
    updater = IndexUpdater(root, None)
    updater.retry_after = 0.01
    calls: list[str] = []
    done = threading.Event()
    real_update = updater.index.update

    def flaky_update() -> Any:
        calls.append("update")
        if len(calls) == 1:
            raise IndexUnavailable("the index is away for a moment")
        done.set()
        return real_update()

    updater.index.update = flaky_update  # type: ignore[method-assign]
    updater.after_merge("chan", {int(INDEX_T0) // 60 * 60})
    assert done.wait(30), calls
    updater.close()
    assert calls == ["update", "update"]


def test_index_keeps_lines_by_user_when_asked_and_until_told_otherwise() -> None:
    """`--lines-by-user` is kept by the index file: a later `index` without it keeps it, the
    answers are the same, and `--no-lines-by-user` drops the copy."""
    root = _archive()
    path = os.path.join(root, ".index.sqlite")
    search = ["search", root, "--user", "alice", "--oldest-first", "--format", "jsonl"]
    assert runner.invoke(app, ["index", root]).exit_code == 0
    plain = runner.invoke(app, search).stdout
    assert len(plain.splitlines()) == 2
    for args, kept in (
        (["--lines-by-user"], True),
        ([], True),
        (["--rebuild"], True),
        (["--no-lines-by-user"], False),
        (["--rebuild", "--lines-by-user"], True),
    ):
        result = runner.invoke(app, ["index", root, *args])
        assert result.exit_code == 0, result.output
        assert ("3 messages indexed, lines by user, in" in result.stderr) is kept, result.stderr
        index = open_index(root, path)
        try:
            assert index.lines_by_user is kept, args
        finally:
            index.close()
        assert runner.invoke(app, search).stdout == plain, args

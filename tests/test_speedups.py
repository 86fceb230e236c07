"""The compiled IRC parser is byte-identical to the pure-Python reference, and the pure path is
always there: CHAT_ARCHIVER_PURE=1 forces it, a missing extension falls back to it and says so once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiles import examples

from formats import canonical, irc, speedups
from formats.errors import IRCParseError
from tests.compiled import Core, native, needs_native
from tests.strategies import archive_records, damaged_irc_lines, irc_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fixtures", "corpus", "twitch-lines.txt")


def _outcome(parse: Callable[[str], Any], line: str) -> object:
    try:
        return parse(line)
    except IRCParseError as e:
        return ("IRCParseError", e.message)


def _compiled() -> Callable[[str], Any]:
    parse: Callable[[str], Any] = native().parse_compat
    return parse


def _assert_same(line: str) -> None:
    fast = _outcome(_compiled(), line)
    ref = _outcome(irc.parse_compat_py, line)
    assert fast == ref, line
    if not isinstance(ref, tuple) or ref[0] == "IRCParseError":
        return
    # equal and of the same types (True is not "True", None is not ""), so the JSON bytes are equal
    assert [type(x) for x in fast] == [type(x) for x in ref]  # type: ignore[union-attr]
    if ref[5] is not None:
        assert [(type(k), type(v)) for k, v in fast[5].items()] == [(type(k), type(v)) for k, v in ref[5].items()]


@needs_native
@settings(max_examples=examples(5))
@given(st.one_of(damaged_irc_lines(), irc_lines().map(lambda pair: pair[0]), st.text(max_size=60)))
def test_compiled_parse_equals_reference_on_random_lines(line: str) -> None:
    _assert_same(line)


@needs_native
def test_compiled_parse_equals_reference_on_the_real_corpus() -> None:
    with open(CORPUS, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    assert len(lines) > 500
    for line in lines:
        _assert_same(line)
        _assert_same(line + "\r\n")
        _assert_same("\t" + line + " ")


@needs_native
@pytest.mark.parametrize(
    "line",
    [
        "@a=1;a=2;b;;c=x\\sy\\:z\\\\w\\q;d=e\\ :n!u!v@h@i privmsg #c d :hé llo 😂",
        "@system-msg=a\\sb\\ :tmi.twitch.tv USERNOTICE #c",
        ": PRIVMSG #c :x",
        "@=v;k= CMD a b c :",
        "PRIVMSG #c x :y :z",
        "CMD",
        "ping",
        "ß x",
        "\tPRIVMSG #c :x\u3000",
        "PRIVMSG #c :x\ty",
        "@a=b",
        ":only",
        "@a=b :nick",
    ],
)
def test_compiled_parse_equals_reference_on_edge_lines(line: str) -> None:
    _assert_same(line)


def test_tag_names_are_reused_only_when_equal(core: Core) -> None:
    parse = core.twin(irc.parse_compat_py, "parse_compat")
    assert parse("@aa=1;bb=2 CMD")[5] == {"aa": "1", "bb": "2"}
    assert parse("@ab=1;bc=2 CMD")[5] == {"ab": "1", "bc": "2"}  # same lengths, other names
    assert parse("@é=1;bc=2 CMD")[5] == {"é": "1", "bc": "2"}  # another string kind
    assert parse("@a=1;bc CMD")[5] == {"a": "1", "bc": True}


# -- the canonical encoder: the compiled twin prints what the reference (and json.dumps) prints --


def _encoder() -> Callable[[Any], bytes]:
    encode: Callable[[Any], bytes] = native().canonical_bytes
    return encode


def _assert_same_bytes(record: Any) -> None:
    import json

    fast = _encoder()(record)
    assert fast == canonical.canonical_bytes_py(record)
    assert fast == json.dumps(record, separators=(",", ":"), sort_keys=True).encode("ascii")


odd_text = st.text(st.characters(codec="utf-8"), max_size=20)  # surrogates, controls, astral, \x7f
odd_number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.just(1e-05),
    st.just(-0.0),
    st.just(2**63 - 1),
    st.just(-(2**63)),
)


@needs_native
@settings(max_examples=examples(3.5))
@given(
    archive_records(),
    st.lists(odd_text, max_size=3),
    st.dictionaries(odd_text, st.one_of(odd_text, st.just(True)), max_size=4),
    odd_number,
)
def test_compiled_encoder_equals_reference_on_random_records(
    record: dict[str, Any], params: list[str], tags: dict[str, Any], number: float
) -> None:
    _assert_same_bytes(record)
    _assert_same_bytes(dict(record, params=params, tags=tags or None, time=number))
    _assert_same_bytes(dict(record, receivers={"b": number, "a": record["time"]}))


@needs_native
@pytest.mark.parametrize(
    "record",
    [
        {"not": "a record"},
        {
            "command": "X",
            "params": [],
            "sender": None,
            "user": None,
            "host": None,
            "tags": {"a": False},
            "receivers": {"r": 1},
            "time": 1,
            "time_range": 0,
        },  # False is no tag value: the reference decides
        {
            "command": "X",
            "params": (),
            "sender": None,
            "user": None,
            "host": None,
            "tags": None,
            "receivers": {"r": True},
            "time": float("inf"),
            "time_range": 0,
        },
        {
            "command": "X",
            "params": ["a"],
            "sender": None,
            "user": None,
            "host": None,
            "tags": {str(i): "v" for i in range(99)},
            "receivers": {"r": 2**64},
            "time": 1.5,
            "time_range": 0,
        },
    ],
)
def test_compiled_encoder_hands_other_shapes_to_the_reference(record: dict[str, Any]) -> None:
    _assert_same_bytes(record)


@needs_native
def test_compiled_encoder_tag_order_is_reused_only_for_the_same_names() -> None:
    encode = _encoder()
    base = {
        "command": "X",
        "params": [],
        "sender": None,
        "user": None,
        "host": None,
        "receivers": {"r": 1},
        "time": 1,
        "time_range": 0,
    }
    keys = [irc.parse_compat("@b=1;a=2 X")[5], irc.parse_compat("@b=1;a=2 X")[5], {"c": "1", "a": "2"}]
    for tags in keys:
        _assert_same_bytes(dict(base, tags=tags))
    assert encode(dict(base, tags={"b": "1", "a": "2"})).startswith(b'{"command":"X","host":null')


@pytest.mark.integration
@needs_native
def test_compiled_core_replays_the_fixtures_to_the_same_bytes(tmp_path: Any) -> None:
    # the whole replay of every fixture recording, compiled and pure, gives the same archive tree
    code = (
        "import os, sys\n"
        "from replay.shell import replay\n"
        "replay(['fixtures/cases'], sys.argv[1])\n"
        "for d, _s, fs in sorted(os.walk(sys.argv[1])):\n"
        "    for f in sorted(fs): print(os.path.relpath(os.path.join(d, f), sys.argv[1]))\n"
    )
    trees = [
        _run(code, str(tmp_path / mode), **env).stdout
        for mode, env in (("compiled", {}), ("pure", {speedups.PURE_ENV: "1"}))
    ]
    assert trees[0] == trees[1]
    assert trees[0].count(".json") > 3


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(speedups.PURE_ENV)}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        check=True,
        timeout=60,
    )


@pytest.mark.integration
def test_pure_env_forces_the_pure_path_silently() -> None:
    done = _run("from formats import speedups; print(speedups.core_name())", CHAT_ARCHIVER_PURE="1")
    assert done.stdout == "pure\n"
    assert done.stderr == ""


@pytest.mark.integration
@needs_native
def test_the_compiled_path_runs_when_built_and_not_forced() -> None:
    done = _run("from formats import speedups; print(speedups.core_name())")
    assert done.stdout == "compiled\n"
    assert done.stderr == ""


@pytest.mark.integration
def test_missing_extension_falls_back_and_says_so_once() -> None:
    code = (
        "import sys; sys.modules['formats._native'] = None\n"  # as if it was never built
        "from formats import irc, speedups\n"
        "import replay.engine, verify.coverage\n"
        "print(speedups.core_name(), irc.parse_compat(':n!u@h PRIVMSG #c :hi')[1])"
    )
    done = _run(code)
    assert done.stdout == "pure ['#c', 'hi']\n"
    assert done.stderr == speedups.NOTICE + "\n"


@pytest.mark.integration
def test_worker_processes_do_not_repeat_the_notice(tmp_path: Path) -> None:
    # forkserver workers import the script afresh (as __mp_main__), so each meets a missing extension
    script = tmp_path / "workers.py"
    script.write_text(
        "import sys; sys.modules['formats._native'] = None\n"
        "import multiprocessing\n"
        "from formats import speedups\n"
        "def pure_in_worker(_: int) -> bool:\n"
        "    return speedups.load() is None\n"
        "if __name__ == '__main__':\n"
        "    speedups.load()\n"
        "    with multiprocessing.get_context('forkserver').Pool(2) as pool:\n"
        "        print(pool.map(pure_in_worker, range(4)))\n"
    )
    done = _run(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')")
    assert done.stdout == "[True, True, True, True]\n"
    assert done.stderr == speedups.NOTICE + "\n"

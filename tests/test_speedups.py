"""The compiled IRC parser is byte-identical to the pure-Python reference, and the pure path is
always there: CHAT_ARCHIVER_PURE=1 forces it, a missing extension falls back to it and says so once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formats import irc, speedups
from formats.errors import IRCParseError
from tests.strategies import irc_lines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# shared/ lies beside the clone in CI, and two levels up from a worktree under wt/
_CORPORA = [os.path.join(ROOT, *up, "shared", "corpus", "twitch-lines.txt") for up in ([".."], ["..", ".."])]
CORPUS = next((p for p in _CORPORA if os.path.exists(p)), None)

try:
    from formats import _speedups
except ImportError:  # no C compiler when installed: only the fallback tests run
    _speedups = None  # type: ignore[assignment]

needs_compiled = pytest.mark.skipif(
    _speedups is None and not os.environ.get("CI"), reason="compiled core not built (no C compiler)"
)


def _outcome(parse: Callable[[str], Any], line: str) -> object:
    try:
        return parse(line)
    except IRCParseError as e:
        return ("IRCParseError", e.message)


def _compiled() -> Callable[[str], Any]:
    assert _speedups is not None, "CI builds the compiled core: gcc is on the CI machine"
    # Configured here too, since under CHAT_ARCHIVER_PURE=1 formats.irc never configures it.
    _speedups.configure(irc.unescape_tag_value_compat, irc.parse_compat_py)
    return _speedups.parse_compat


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


@needs_compiled
@settings(max_examples=1500)
@given(st.one_of(irc_lines(), st.text(max_size=60)))
def test_compiled_parse_equals_reference_on_random_lines(line: str) -> None:
    _assert_same(line)


@needs_compiled
def test_compiled_parse_equals_reference_on_the_real_corpus() -> None:
    if CORPUS is None:
        assert not os.environ.get("CI"), f"CI lays shared/ beside the clone: none of {_CORPORA}"
        pytest.skip("no shared/corpus beside this clone")
    with open(CORPUS, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    assert len(lines) > 500
    for line in lines:
        _assert_same(line)
        _assert_same(line + "\r\n")


@needs_compiled
@pytest.mark.parametrize("line", [
    "@a=1;a=2;b;;c=x\\sy\\:z\\\\w\\q;d=e\\ :n!u!v@h@i privmsg #c d :hé llo 😂",
    "@system-msg=a\\sb\\ :tmi.twitch.tv USERNOTICE #c",
    ": PRIVMSG #c :x",
    "@=v;k= CMD a b c :",
    "PRIVMSG #c x :y :z",
    "CMD",
    "ping",
    "ß x",
    "@a=b",
    ":only",
    "@a=b :nick",
])
def test_compiled_parse_equals_reference_on_edge_lines(line: str) -> None:
    _assert_same(line)


@needs_compiled
def test_compiled_tag_names_are_reused_only_when_equal() -> None:
    parse = _compiled()
    assert parse("@aa=1;bb=2 CMD")[5] == {"aa": "1", "bb": "2"}
    assert parse("@ab=1;bc=2 CMD")[5] == {"ab": "1", "bc": "2"}  # same lengths, other names
    assert parse("@é=1;bc=2 CMD")[5] == {"é": "1", "bc": "2"}  # another string kind
    assert parse("@a=1;bc CMD")[5] == {"a": "1", "bc": True}


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != speedups.PURE_ENV}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT,
                          check=True, timeout=60)


def test_pure_env_forces_the_pure_path_silently() -> None:
    done = _run("from formats import speedups; print(speedups.core_name())", CHAT_ARCHIVER_PURE="1")
    assert done.stdout == "pure\n"
    assert done.stderr == ""


@needs_compiled
def test_the_compiled_path_runs_when_built_and_not_forced() -> None:
    done = _run("from formats import speedups; print(speedups.core_name())")
    assert done.stdout == "compiled\n"
    assert done.stderr == ""


def test_missing_extension_falls_back_and_says_so_once() -> None:
    code = (
        "import sys; sys.modules['formats._speedups'] = None\n"  # as if it was never built
        "from formats import irc, speedups\n"
        "import replay.engine, verify.coverage\n"
        "print(speedups.core_name(), irc.parse_compat(':n!u@h PRIVMSG #c :hi')[1])"
    )
    done = _run(code)
    assert done.stdout == "pure ['#c', 'hi']\n"
    assert done.stderr == speedups.NOTICE + "\n"

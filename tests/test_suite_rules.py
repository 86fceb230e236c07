"""Rules the suite keeps about itself, checked on its own source."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def pinned_example_counts(source: str) -> list[int]:
    """Lines where a call passes `max_examples=` a number written out."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "max_examples" and isinstance(kw.value, ast.Constant)
    ]


def test_no_test_pins_a_hypothesis_example_count() -> None:
    """Example counts come from the profiles (tests/profiles.py: `dev` quick, `ci` thorough); a
    test that needs more or fewer asks for a multiple with `examples(k)`."""
    pinned = {
        path.name: lines
        for path in sorted(TESTS.glob("*.py"))
        if path.name != "profiles.py" and (lines := pinned_example_counts(path.read_text()))
    }
    assert not pinned, pinned


def test_a_written_out_count_is_found() -> None:
    assert pinned_example_counts("@settings(max_examples=300, deadline=None)\ndef f(): pass\n") == [1]
    assert pinned_example_counts("@settings(max_examples=examples(2))\ndef f(): pass\n") == []

"""Rules the suite keeps about itself, checked on its own source."""

from __future__ import annotations

import ast
import re
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


ROOT = TESTS.parent
# Names production defines for a framework to call, never called by name in our own code:
# typer's commands and callback are registered by decorator (skipped below); these are overrides
FRAMEWORK_HOOKS = {
    "list_commands",  # click.Group: the CLI's commands in --help's order (chat_archiver/cli.py)
    "on_broken_pipe",  # rich.Console: a closed pipe (chat_archiver/console.py)
    "channel_class",  # waitress: the connection of an accepted socket (serve/server.py)
}


def package_sources(*names: str) -> dict[Path, str]:
    """Every Python file of the named packages (default: the product's, every package beside
    tests/, bench/, demo/ and fixtures/)."""
    if not names:
        names = tuple(
            p.name
            for p in ROOT.iterdir()
            if (p / "__init__.py").exists() and p.name not in ("tests", "bench", "demo", "fixtures")
        )
    return {f: f.read_text() for name in names for f in sorted((ROOT / name).rglob("*.py"))}


def called_by_nothing(sources: dict[Path, str], callers: str) -> list[str]:
    """Functions and classes of `sources` whose name occurs only where it is defined, in all of
    `sources` and `callers` (the C, which calls some by name, the benchmarks and the demo): so
    called by tests at most. Dunders and decorated functions (registered by the decorator) are not
    counted."""
    words: dict[str, int] = {}
    for word in re.findall(r"\w+", "\n".join(sources.values()) + callers):
        words[word] = words.get(word, 0) + 1
    found = []
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name.startswith("__") or node.decorator_list or node.name in FRAMEWORK_HOOKS:
                continue
            if words.get(node.name, 0) <= 1:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_no_production_function_is_called_only_by_tests() -> None:
    """Production holds what runs: a function only tests call belongs in the tests (a reference a
    twin is held to is called by its twin's binding, `speedups.twin`, so it counts as called)."""
    native = "".join(p.read_text() for p in sorted((ROOT / "native").glob("*.[ch]")))
    tools = "".join(package_sources("bench", "demo").values())
    assert called_by_nothing(package_sources(), native + tools) == []


def test_a_function_called_by_nothing_is_found(tmp_path: Path) -> None:
    sources = {ROOT / "a.py": "def used():\n    pass\n\ndef unused():\n    used()\n\n@app.command()\ndef cmd(): ...\n"}
    assert called_by_nothing(sources, "") == ["a.py:4 unused"]

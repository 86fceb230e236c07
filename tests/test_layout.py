"""Dependencies run one way: CLI (`chat_archiver/`) -> stages -> `formats/`, read from the sources.

A stage imports another only where it is built on it. `ALLOWED` is the whole graph, one entry
per stage (the README's Development section draws it); a stage not yet written is listed too, so
its first import of another stage has to be added here on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

ALLOWED: dict[str, set[str]] = {
    "recorder": set(),
    "replay": set(),
    "merge": set(),
    "verify": set(),
    "export": {"merge", "media"},  # an export reads the merged view of a window, and shows the images media keeps
    "live": {"replay", "merge"},  # the live follower is the replay run incrementally, then the merge
    "serve": {"export", "index", "media"},  # the server answers with export's renderings
    "sync": {"merge", "media"},  # a sync verifies fetched batches with the merge's reader
    "index": set(),  # the index keys messages by the merge's identity rule, which lives in formats/
    "media": set(),
}
STAGES = tuple(ALLOWED)
PRESENT = tuple(stage for stage in STAGES if (ROOT / stage / "__init__.py").exists())


def imported_packages(package: str) -> set[str]:
    """The top-level packages imported anywhere in `package` (imports inside functions too)."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_allow_list_names_only_stages() -> None:
    for stage, allowed in ALLOWED.items():
        assert allowed <= set(STAGES) - {stage}, stage


def test_the_allow_list_has_no_circle() -> None:
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in ALLOWED[start])

    assert [stage for stage in STAGES if reaches(stage, stage, set())] == []


def test_every_stage_package_is_in_the_allow_list() -> None:
    """A new top-level package with stage code must get its entry (or be one of the known others)."""
    others = {"formats", "chat_archiver", "demo", "tests", "bench", "fixtures", "build", "docs"}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - others - set(STAGES) == set()


def test_formats_imports_no_stage_and_no_cli() -> None:
    assert imported_packages("formats") & {*STAGES, "chat_archiver"} == set()


@pytest.mark.parametrize("stage", PRESENT)
def test_a_stage_imports_only_formats_and_the_stages_it_is_built_on(stage: str) -> None:
    others = set(STAGES) - {stage}
    assert imported_packages(stage) & others <= ALLOWED[stage]


@pytest.mark.parametrize("stage", PRESENT)
def test_a_stage_never_imports_the_cli(stage: str) -> None:
    assert imported_packages(stage) & {"chat_archiver", "demo"} == set()


def test_the_readme_draws_this_graph() -> None:
    """Each present stage built on others has its line in the README's layout drawing, and the
    stages built on none are listed as such."""
    readme = (ROOT / "README.md").read_text("utf-8")
    for stage in PRESENT:
        on = [other for other in STAGES if other in ALLOWED[stage] and other in PRESENT]
        if on:
            assert f"\n{stage.ljust(6)} --> {', '.join(on)}\n" in readme, stage
    alone = [stage for stage in PRESENT if not ALLOWED[stage] & set(PRESENT)]
    assert f"\n{', '.join(alone)} --> formats/ only\n" in readme


def _value_imports(package: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of `package` that `path` imports for use at run time (module level or inside a
    function); an import under `if TYPE_CHECKING:` is for the type checker only and does not count."""
    tree = ast.parse(path.read_text("utf-8"))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            parts = node.module.split(".")
            if parts[0] == package and len(parts) > 1:
                found.add(parts[1])
            elif parts == [package]:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == package and len(parts) > 1:
                    found.add(parts[1])
    return (found & modules) - {path.stem}


def import_circles(package: str, root: Path = ROOT) -> list[set[str]]:
    """The circles of value imports between the modules of `package` (strongly connected sets of
    more than one module), found by Tarjan's algorithm."""
    paths = {path.stem: path for path in (root / package).glob("*.py")}
    graph = {name: _value_imports(package, path, set(paths)) for name, path in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                top = stack.pop()
                component.add(top)
                if top == module:
                    break
            if len(component) > 1:
                circles.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_the_circle_finder_finds_a_circle(tmp_path: Path) -> None:
    """The check below can fail: a lazy import inside a function closes a circle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import f\n")
    (package / "b.py").write_text("def f():\n    from pkg import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    assert import_circles("pkg", tmp_path) == [{"a", "b"}]


PACKAGES = ("formats", "chat_archiver", *STAGES)


@pytest.mark.parametrize(
    "package",
    [package for package in PACKAGES if (ROOT / package / "__init__.py").exists()],
)
def test_no_value_import_circle_inside_a_package(package: str) -> None:
    assert import_circles(package) == []

"""Benchmarks (`python -m bench --help`). Each module's `run()` prints figures as `name: value unit`."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def main(module: str, doc: str | None, run: Callable[[], None], argv: list[str]) -> None:
    """What `python -m bench.bench_NAME` does: run it, after answering `--help` and refusing any
    other argument (a benchmark takes no options, and must not ignore one silently)."""
    argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").strip()).parse_args(argv)
    run()

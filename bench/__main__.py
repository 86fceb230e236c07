"""`make bench`: every benchmark of the project, figures printed one per line as `name: value unit`.

Each area has its own module with a `run()` function, run in a fresh process of its own so that
one benchmark's memory never shows in another's peak-RSS figures; a failing one is reported and the
others still run. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

MODULES = [
    "bench.bench_replay",
    "bench.bench_merge",
    "bench.bench_recorder",
    "bench.bench_verify",
    "bench.bench_playback",
    "bench.bench_live",
    "bench.bench_serve",
    "bench.bench_media",
    "bench.bench_index",
    "bench.bench_justlog",
]


def parse_args(argv: list[str]) -> list[str]:
    """The benchmark modules named on the command line (all when none is named); `--help` and
    unknown names are answered by argparse (exit 0 and 2), never run as an empty selection."""
    short = [m.removeprefix("bench.bench_") for m in MODULES]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks, each in a fresh process, and print their figures one per line as "
        "`name: value unit`. Test data is generated once into bench/out/ (about 10 GB with the "
        "one-day archive and the one-day raw recording) and reused by later runs.",
        epilog="Examples: `python -m bench` runs them all; `python -m bench replay merge` runs two.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"only these benchmarks: {', '.join(short)} (default: all)"
    )
    names = [n.removeprefix("bench.").removeprefix("bench_") for n in parser.parse_args(argv).names]
    unknown = [n for n in names if n not in short]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (there are: {', '.join(short)})")
    return [m for m, s in zip(MODULES, short, strict=True) if not names or s in names]


def main(argv: list[str]) -> int:
    failed = 0
    for name in parse_args(argv):
        print(f"# {name}", flush=True)
        start = time.perf_counter()
        code = f"import importlib; importlib.import_module({name!r}).run()"
        if subprocess.run([sys.executable, "-c", code], check=False).returncode != 0:
            failed += 1
            print(f"# {name} failed")
        print(f"# {name} took {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

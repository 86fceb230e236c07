"""`make bench`: every benchmark of the project, figures printed one per line as `name: value unit`.

Each area has its own module with a `run()` function, run in a fresh process of its own so that
one benchmark's memory never shows in another's peak-RSS figures; a failing one is reported and the
others still run. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import subprocess
import sys
import time

MODULES = ["bench.bench_replay", "bench.bench_merge", "bench.bench_recorder", "bench.bench_verify", "bench.bench_live"]


def main(names: list[str]) -> int:
    failed = 0
    for name in MODULES:
        if names and not any(n in name for n in names):
            continue
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

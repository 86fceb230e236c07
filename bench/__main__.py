"""`make bench`: every benchmark of the project, figures printed one per line as `name: value unit`.

Each area has its own module with a `run()` function; a missing or failing one is reported and the
others still run. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback

MODULES = ["bench.bench_replay", "bench.bench_merge", "bench.bench_recorder", "bench.bench_verify"]


def main(names: list[str]) -> int:
    failed = 0
    for name in MODULES:
        if names and not any(n in name for n in names):
            continue
        print(f"# {name}", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(name).run()
        except ModuleNotFoundError as e:
            print(f"# skipped: {e}")
        except Exception:
            failed += 1
            traceback.print_exc()
        print(f"# {name} took {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

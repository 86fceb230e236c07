"""A real PostgreSQL server for the tests, in a temporary folder (initdb, pg_ctl), never a mock.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as `nobody` (through
`runuser`), in a folder that user owns, listening only on a unix socket in that folder. Without
the binaries the tests that need it are skipped with the reason, except in CI (env CI set), where
that is a failure: `.ci/run` installs Debian's `postgresql`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def find_bin_dir() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    found = shutil.which("pg_ctl")
    return os.path.dirname(os.path.realpath(found)) if found else None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "nobody", "--", *cmd]


def unavailable_reason() -> str | None:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return "PostgreSQL binaries not found (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and PostgreSQL refuses to run as root"
    return None


def require_postgres() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)


@contextmanager
def postgres_server(settings: str = "") -> Iterator[str]:
    """Start a throwaway server; yield a URL of its `postgres` database (unix socket, trust auth).
    `settings`: more server options (`-c name=value ...`). Call `require_postgres()` (tests) or
    `unavailable_reason()` (benchmarks) first."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries not found")
    base = tempfile.mkdtemp(prefix="pgtest-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        for path in (base, sock):
            shutil.chown(path, "nobody", "nogroup")
    env = {**os.environ, "LC_ALL": "C"}

    def run(*args: str, check: bool = True) -> None:
        subprocess.run(_as_server_user([*args]), check=check, capture_output=True, env=env, cwd=base)

    run(f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
    options = (
        f"-c listen_addresses='' -k {sock} -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        f" -c max_connections=50 {settings}"
    )
    run(f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-l", f"{base}/log", "-w", "start")
    try:
        yield f"postgresql://postgres@/postgres?host={sock}"
    finally:
        run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)

"""`python -m bench` explains itself and no benchmark ignores a flag silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import MODULES, parse_args

ROOT = Path(__file__).parent.parent


def test_help_explains_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "name: value unit" in text and "bench/out" in text
    for name in ("replay", "merge", "recorder", "verify"):
        assert name in text


def test_names_select_and_unknown_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([]) == MODULES
    assert parse_args(["merge", "bench_replay"]) == ["bench.bench_replay", "bench.bench_merge"]
    with pytest.raises(SystemExit) as done:
        parse_args(["--quick"])
    assert done.value.code == 2
    with pytest.raises(SystemExit) as done:
        parse_args(["nosuch"])
    assert done.value.code == 2 and "no benchmark nosuch" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("module", MODULES)
def test_a_benchmark_module_refuses_an_unknown_flag_before_running(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "unrecognized arguments: --quick" in result.stderr
    assert result.stdout == ""  # nothing ran

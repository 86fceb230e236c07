"""One version string: `--version`, the package metadata and the recorder's `software`
field in raw recordings all say the same."""

from __future__ import annotations

import importlib.metadata

from typer.testing import CliRunner

from chat_archiver.cli import app
from formats import __version__
from recorder.recorder import SOFTWARE


def test_one_version_everywhere() -> None:
    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"chat-archiver {__version__}"
    assert importlib.metadata.version("chat-archiver") == __version__
    assert f"chat-archiver {__version__}" == SOFTWARE

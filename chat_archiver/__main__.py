"""The `chat-archiver` script (and `python -m chat_archiver`): the CLI, with Ctrl-C answered the
same way from the first moment. A Ctrl-C while the CLI is still importing its modules ends it as
one in a command does, with one line and exit 130, never with an import's traceback."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 128 + 2  # as chat_archiver.console, which is not imported yet


def main() -> None:
    try:
        from chat_archiver.cli import main as run  # noqa: PLC0415 (the import is what is guarded)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: stopped\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run()


if __name__ == "__main__":
    main()

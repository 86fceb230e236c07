"""The `chat-archiver` command line: the outermost shell around recorder, replay and merge."""

from formats import __version__

__all__ = ["__version__"]

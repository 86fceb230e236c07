"""The `chat-archiver` command line: the outermost shell around recorder, replay and merge."""

__version__ = "0.1.0"

"""The media options `media` and `archive` share (docs/cli.md: one meaning in both), and their checks."""

from __future__ import annotations

import typer

from chat_archiver.console import fail, warn

NO_EMOTES = typer.Option(False, "--no-emotes", help="Do not fetch the Twitch emotes messages use (docs/media.md).")
MEDIA_LINKS = typer.Option(
    False, "--media-links", help="Also fetch images, videos and PDFs linked in messages (docs/media.md)."
)
TWITCH_CDN = typer.Option(
    None, "--twitch-cdn", metavar="URL", help="Fetch Twitch emotes from this mirror (default: Twitch's CDN)."
)
ALLOW_PRIVATE = typer.Option(
    False,
    "--allow-private-addresses",
    help="Let media fetches reach loopback and private addresses (tests, private mirrors). Unsafe with links.",
)


def check(twitch_cdn: str | None, allow_private: bool) -> None:
    """Exit 2 for a mirror that is not an http(s) URL; say loudly that private addresses are open."""
    if twitch_cdn is not None and not twitch_cdn.startswith(("http://", "https://")):
        fail(f"--twitch-cdn must be an http:// or https:// URL, not {twitch_cdn!r}")
    if allow_private:
        from media.keeper import PRIVATE_WARNING  # noqa: PLC0415 (keeps `chat-archiver --help` light)

        warn(PRIVATE_WARNING)


def as_arguments(*, no_emotes: bool, media_links: bool, twitch_cdn: str | None, allow_private: bool) -> list[str]:
    """The same options on a command line (what `archive` passes to its media child)."""
    argv = ["--twitch-cdn", twitch_cdn] if twitch_cdn else []
    argv += ["--media-links"] if media_links else []
    argv += ["--no-emotes"] if no_emotes else []
    argv += ["--allow-private-addresses"] if allow_private else []
    return argv

"""`chat-archiver emotes`: snapshot the BetterTTV, FrankerFaceZ and 7TV emote sets (and, with a
token, Twitch's badges) of some channels into an archive, once or every few hours."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer

from chat_archiver import console
from chat_archiver.cmd_record import _read_token
from media.badges import Helix, take_badges
from media.snapshots import channel_id_in_archive, http_fetch, safe_fetch, snapshot_channels
from media.store import MediaStore
from media.thirdparty import GLOBAL

RETRY_IDS = 300.0  # s: how soon a round is taken again while some channel's id is not known yet


def _known_ids(root: str, given: dict[str, str]) -> dict[str, str]:
    """login -> Twitch id, as given or as the archive's newest records say; unknown ones left out."""
    found = {login: cid or channel_id_in_archive(root, login) or "" for login, cid in given.items()}
    return {login: cid for login, cid in found.items() if cid}


def register(app: typer.Typer) -> None:
    @console.command(app, "emotes", interrupted="snapshots already written are kept.")
    def _emotes(
        root: Path = typer.Argument(..., metavar="ROOT", help="Archive root.", show_default=False),
        channels: list[str] = typer.Argument(..., metavar="CHANNEL...", help="LOGIN or LOGIN=ID.", show_default=False),
        every: float = typer.Option(
            0.0,
            "--every",
            metavar="HOURS",
            min=0.0,
            max=8760.0,
            help="Take a round now, then every HOURS hours (0: one round).",
        ),
        bttv_url: str = typer.Option(None, "--bttv-url", metavar="URL", help="BetterTTV mirror (API and CDN paths)."),
        ffz_url: str = typer.Option(None, "--ffz-url", metavar="URL", help="FrankerFaceZ mirror (API and CDN paths)."),
        seventv_url: str = typer.Option(None, "--7tv-url", metavar="URL", help="7TV mirror (API and CDN paths)."),
        helix_url: str = typer.Option(
            None, "--helix-url", metavar="URL", help="Twitch mirror for badges (Helix, token check and badge CDN)."
        ),
        allow_private: bool = typer.Option(
            False,
            "--allow-private-addresses",
            help="Let the third-party fetches reach loopback and private addresses (tests, private mirrors).",
        ),
        token_file: Path = typer.Option(
            None, "--token-file", metavar="FILE", help="Read the token (for badges) from FILE, not the environment."
        ),
    ) -> None:
        """Snapshot channels' third-party emote sets, and badges with a token.

        The BetterTTV, FrankerFaceZ and 7TV emote sets of each CHANNEL and the global ones go to
        ROOT/thirdparty/ as small timestamped JSON files, each image stored once by its SHA-256
        under ROOT/images/. With a token (CHAT_ARCHIVER_TOKEN or --token-file, as record takes
        it), Twitch's global and channel badges go to ROOT/badges/ too. The html and
        twitchdownloader exports then show what each word stood for at each message's time.
        See docs/media.md.

        A CHANNEL is a login, or LOGIN=ID with its Twitch user id; without the id it is read
        from the archive's newest records (their room-id tag). With --every, a channel whose id
        is not known yet (a host just started) is tried again every five minutes.

        Exit status: 0 done, 1 done with findings (a source failed or answered badly; its previous
        snapshot stays in force), 2 nothing could be done, 130 stopped by Ctrl-C.

        \b
        Examples:
          chat-archiver emotes /srv/wubloader desertbus --every 6
          chat-archiver emotes archive/ desertbus=22510310
        """
        given_ids: dict[str, str] = {}
        for item in channels:
            login, _, given = item.lstrip("#").lower().partition("=")
            if not login or not all(c.isalnum() or c == "_" for c in login) or (given and not given.isdigit()):
                console.fail(f"not a channel: {item!r} (give LOGIN or LOGIN=ID)")
            given_ids[login] = given
        ids = _known_ids(str(root), given_ids)
        missing = sorted(set(given_ids) - set(ids))
        if missing and not every:
            login = missing[0]
            console.fail(f"no Twitch id for {login}: none of its newest records has a room-id tag; give {login}=ID")
        token = _read_token(token_file)
        mirrors: dict[str, str | None] = {"bttv": bttv_url, "ffz": ffz_url, "7tv": seventv_url}
        for option, url in (
            ("--bttv-url", bttv_url),
            ("--ffz-url", ffz_url),
            ("--7tv-url", seventv_url),
            ("--helix-url", helix_url),
        ):
            if url is not None and not url.startswith(("http://", "https://")):
                console.fail(f"{option} must be an http:// or https:// URL, not {url!r}")
        if allow_private:
            console.warn(
                "--allow-private-addresses: the third-party fetches may reach loopback and private addresses; "
                "use it only for tests and private mirrors."
            )
        store = MediaStore(str(root))
        fetch = safe_fetch(allow_private)  # the third-party APIs and CDNs: the defended fetcher
        helix_fetch = http_fetch()  # Twitch's API with the token in a header, at a configured address
        stop = threading.Event()
        problems = 0
        while True:
            ids = _known_ids(str(root), given_ids)
            missing = sorted(set(given_ids) - set(ids))
            if missing:  # only with --every: a host just started has no records yet
                console.note(
                    f"no Twitch id yet for {', '.join(missing)} (no room-id in its records); trying again soon"
                )
            findings = snapshot_channels(str(root), ids, store=store, fetch=fetch, mirrors=mirrors)
            if token:
                helix = Helix.mirror(helix_url)
                for scope, channel_id in [(GLOBAL, None), *ids.items()]:
                    _, found_badges = take_badges(
                        str(root), helix, token, scope, channel_id, store=store, fetch=helix_fetch, now=time.time()
                    )
                    findings += found_badges
            for finding in findings[:50]:
                console.warn(finding)
            if len(findings) > 50:
                console.warn(f"... and {len(findings) - 50} more findings")
            problems += bool(findings)
            console.note(
                f"snapshot of {len(ids)} channel(s) and the globals taken"
                + ("" if token else "; badges stay text (no token: see docs/media.md)")
            )
            wait = min(every * 3600, RETRY_IDS) if missing else every * 3600
            if not every or stop.wait(wait):
                break
        if problems:
            raise typer.Exit(console.EXIT_PROBLEMS)

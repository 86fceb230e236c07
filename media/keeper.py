"""The media stage's engine: what a record names, fetched in the background into the store.

`Keeper.offer_record(record)` is all a caller does; it returns at once. The Twitch emotes of the
record's `emotes` tag (and, with `links`, the links in its text) are offered to background workers
(`media.workers`), which fetch what is not on disk yet through the fetcher's defences
(`media.fetch`) and write it atomically (`media.store`). Emote answers must be real images (by
their magic bytes) under the image cap; links must be an image, a video or a PDF under 128 MiB.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from media import layout
from media.fetch import (
    Failed,
    Fetched,
    Fetcher,
    Policy,
    Refused,
    Resolver,
    link_content_type_ok,
    system_resolver,
)
from media.links import find_links, strip_trailing
from media.sniff import MAX_IMAGE, image_problem
from media.store import MediaStore, write_atomic
from media.workers import Background, Log, MediaStats

# what the CLI says when fetches may reach private addresses (loud: it opens the host's network)
PRIVATE_WARNING = (
    "--allow-private-addresses: fetches may reach loopback and private addresses; a link posted in "
    "chat can now reach services on this host and its network. Use it only for tests and private mirrors."
)
EMOTE_TIMEOUT = 30.0  # s per emote variant: a CDN answers in well under a second


@dataclass(frozen=True)
class Options:
    """How the keeper fetches. `twitch_cdn` may name a mirror; `allow_private` lets fetches reach
    loopback and private addresses (tests, a mirror on the LAN): off, a hostile link could."""

    twitch_cdn: str = layout.TWITCH_CDN
    emotes: bool = True
    links: bool = False
    allow_private: bool = False
    workers: int = 4
    queue_size: int = 10_000
    retry_after: float = 300.0
    fetched_by: str = ""
    link_timeout: float = 60.0
    emote_timeout: float = EMOTE_TIMEOUT


def _emote_type_ok(content_type: str) -> bool:
    return content_type.lower().startswith("image/")


class Keeper:
    """Fetches into the store under ROOT what records name. A context manager (closes workers)."""

    def __init__(
        self,
        root: str,
        opts: Options,
        *,
        stats: MediaStats | None = None,
        log: Log = lambda line: None,
        resolve: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = MediaStore(root)
        self.opts = opts
        self.stats = stats or MediaStats()
        self.log = log
        self.clock = clock
        self.fetched_by = opts.fetched_by or socket.gethostname()
        self.emote_fetcher = Fetcher(
            Policy(
                allow_private=opts.allow_private,
                timeout=opts.emote_timeout,
                max_bytes=MAX_IMAGE,
                content_type_ok=_emote_type_ok,
            ),
            resolve,
        )
        self.link_fetcher = Fetcher(
            Policy(allow_private=opts.allow_private, timeout=opts.link_timeout, content_type_ok=link_content_type_ok),
            resolve,
        )
        common: dict[str, Any] = {
            "workers": opts.workers,
            "queue_size": opts.queue_size,
            "retry_after": opts.retry_after,
            "log": log,
        }
        self.emotes = Background("emote", self.fetch_emote, self.stats, **common) if opts.emotes else None
        self.links = Background("link", self.fetch_link, self.stats, **common) if opts.links else None

    # -- the caller's side ----------------------------------------------------------------------
    def offer_record(self, record: dict[str, Any], *, wait: bool = False) -> None:
        """Queue what `record` names. Never raises for what the record holds; never blocks unless
        `wait` (a pass over an archive waits for room in the queue instead of dropping)."""
        if self.emotes is not None:
            for emote_id in layout.record_emote_ids(record):
                self.emotes.offer(emote_id, wait=wait)
        if self.links is not None and record.get("command") == "PRIVMSG":
            params = record.get("params")
            if isinstance(params, list) and len(params) >= 2 and isinstance(params[-1], str):
                for url in find_links(params[-1]):
                    self.links.offer(url, wait=wait)

    def retry_due(self) -> int:
        """Queue again what failed for a reason that may pass, once its wait is over."""
        return sum(bg.retry_due() for bg in (self.emotes, self.links) if bg is not None)

    def drain(self, timeout: float | None = None) -> bool:
        return all(bg.drain(timeout) for bg in (self.emotes, self.links) if bg is not None)

    def close(self) -> None:
        for bg in (self.emotes, self.links):
            if bg is not None:
                bg.close()

    def __enter__(self) -> Keeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the workers' side ----------------------------------------------------------------------
    def _fetch(self, kind: str, fetcher: Fetcher, url: str) -> Fetched:
        try:
            got = fetcher.fetch(url)
        except Refused as e:
            self.stats.add("fetches", (kind, "refused"))
            self.stats.add("refusals", (kind, e.reason))
            raise
        except Failed as e:
            self.stats.add("fetches", (kind, "failed"))
            self.stats.add("refusals", (kind, e.reason))
            raise
        self.stats.add("fetches", (kind, "ok"))
        self.stats.add("bytes_fetched", kind, len(got.body))
        return got

    def fetch_emote(self, emote_id: str) -> None:
        """Fetch the variants of one emote that are not on disk (none if all six are)."""
        for variant in self.store.missing_variants(emote_id):
            url = layout.emote_url(emote_id, variant, self.opts.twitch_cdn)
            got = self._fetch("emote", self.emote_fetcher, url)
            problem = image_problem(got.body)
            if problem is not None:
                self.stats.add("refusals", ("emote", problem))
                raise Refused(problem, url)
            if self.store.write(layout.emote_relpath(emote_id, variant), got.body):
                self.stats.add("files_written", "emote")

    def link_done(self, url: str) -> bool:
        """Whether a link was fetched before (its folder holds a metadata file)."""
        folder = self.store.path(layout.media_names(url, b"", "")[0])
        try:
            return any(n.endswith(".metadata.json") and not n.startswith(".") for n in os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return False

    def fetch_link(self, url: str) -> None:
        """Fetch one link unless fetched before; after a 4xx, once more without trailing
        punctuation (`look at example.com/a.png!`)."""
        if self.link_done(url):
            return
        try:
            got = self._fetch("link", self.link_fetcher, url)
        except Failed as e:
            stripped = strip_trailing(url)
            if e.status is None or not 400 <= e.status < 500 or stripped is None:
                raise
            if self.link_done(stripped):
                return
            got = self._fetch("link", self.link_fetcher, stripped)
            url = stripped
        content, meta = self.store.media_paths(url, got.body, got.content_type)
        write_atomic(content, got.body)
        metadata = layout.media_metadata(
            url,
            os.path.basename(content),
            got.redirects,
            got.content_type,
            fetched_by=self.fetched_by,
            fetch_time=self.clock(),
        )
        if write_atomic(meta, metadata):
            self.stats.add("files_written", "link")

"""A simulated mixed cluster: one chat-archiver node and one wubloader node (the clean-room model in
tests/wubloader_model.py) recording the same channel and copying each other's chat files.

Each node's recorder sees the same server lines with its own delays; each archive is what our
replay writes (byte for byte what a wubloader archiver writes: ARCHIVE_FORMAT.md section 4). Then,
round after round: the wubloader node's backfiller fetches every file of ours whose *name* it does
not hold (it never remembers what it merged away), our `sync` fetches the names it neither holds
nor fetched before, and each node merges: ours with `merge_tree`, theirs with the model's merge
loop. `run_cluster` counts the files each side fetched per round, and sorts the wubloader node's
by why it fetched them (`Round`): most hold a JOIN or PART that its own merge deleted, which ours
keeps.

Run `python -m tests.mixed_cluster [MINUTES [SEED...]]` for the figures quoted in docs/serve-sync.md.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fixtures.txt2raw import convert
from formats.canonical import batch_relpath
from merge.directory import merge_tree
from tests import wubloader_model as model
from tests.pipeline import replay

CHANNEL = "desertbus"
T0 = 1_700_000_400
ROOM = "@emote-only=0;followers-only=-1;r9k=0;room-id=22510310;slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE #desertbus"


def server_lines(minutes: int, *, seed: int = 1, ids_only: bool = False) -> list[tuple[float, str]]:
    """(send time, line) of a busy Twitch channel: a chat message about every half second, and
    unless `ids_only`, JOIN/PART batches every few seconds (Twitch delivers them up to ~30 s late,
    so each is estimated: section 4) and a timeout every 90 s (an exact time, no id)."""
    rng = random.Random(seed)
    out: list[tuple[float, str]] = []
    end = T0 + 60 * minutes
    t = T0 + 5.0
    n = 0
    while t < end:
        n += 1
        user = f"user{rng.randrange(400):03d}"
        ms = round(t * 1000)
        tags = f"badges=;color=;display-name={user};emotes=;id=00000000-0000-4000-8000-{n:012d};mod=0"
        tags += f";room-id=22510310;subscriber=0;tmi-sent-ts={ms};turbo=0;user-id={1000 + n % 400};user-type="
        text = " ".join(rng.choice(("Kappa", "hello", "PogChamp", "lol", "gg")) for _ in range(3))
        out.append((ms / 1000, f"@{tags} :{user}!{user}@{user}.tmi.twitch.tv PRIVMSG #{CHANNEL} :{text}"))
        t += rng.uniform(0.1, 0.9)
    if not ids_only:
        t = T0 + 8.0
        while t < end:
            late = rng.uniform(3.0, 25.0)  # how late Twitch delivers this batch
            for _ in range(rng.randrange(1, 4)):
                user = f"user{rng.randrange(400):03d}"
                command = rng.choice(("JOIN", "PART"))
                out.append((t + late, f":{user}!{user}@{user}.tmi.twitch.tv {command} #{CHANNEL}"))
            t += rng.uniform(4.0, 10.0)
        for k in range(1, minutes * 60 // 90 + 1):
            ms = (T0 + 90 * k) * 1000 + 250
            out.append(
                (
                    ms / 1000,
                    f"@room-id=22510310;target-user-id=9;tmi-sent-ts={ms} :tmi.twitch.tv CLEARCHAT #{CHANNEL} :spammer",
                )
            )
    return sorted(out)


def recording(host: str, slug: str, lines: list[tuple[float, str]], seed: int, jitter: float = 0.35) -> str:
    """One recorder's recording (fixtures' text format) of `lines`, each received 50 ms plus up to
    `jitter` seconds after it was sent (in send order: one TCP stream)."""
    rng = random.Random(seed)
    rows = [f"header {host} {slug} {host}", f"{T0:.6f} open 0 twitch wss://irc-ws.chat.twitch.tv:443"]
    rows.append(f"{T0 + 0.5:.6f} recv 0 {ROOM}")
    last = T0 + 0.5
    for sent, line in lines:
        last = max(last, sent + 0.05 + rng.uniform(0, jitter))
        rows.append(f"{last:.6f} recv 0 {line}")
    return "\n".join(rows) + "\n"


def record_node(
    root: Path, raw: Path, host: str, slug: str, lines: list[tuple[float, str]], *, seed: int, jitter: float = 0.35
) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / f"{host}.jsonl"
    path.write_bytes(convert(recording(host, slug, lines, seed, jitter)))
    replay([str(path)], str(root))


def names(root: Path) -> dict[str, Path]:
    """Every batch file under root, by its path relative to it (what a listing shows)."""
    return {str(p.relative_to(root)): p for p in root.rglob("*.json") if ".sync" not in p.parts}


def model_merge(root: Path, *, receiver_check: bool = False) -> None:
    """The wubloader node's merge loop on its folder (section 5): while a minute holds several
    files, merge that minute's files with its neighbours' (file by file, in listing order), write
    the result, then delete the inputs not written again. `receiver_check`: the model's merge with
    upstream's receiver check made to fire (`wubloader_model.merge_two`)."""
    for _ in range(1000):
        by_minute: dict[int, list[Path]] = {}
        for rel, path in sorted(names(root).items()):
            by_minute.setdefault(_minute(rel), []).append(path)
        crowded = [m for m, paths in sorted(by_minute.items()) if len(paths) > 1]
        if not crowded:
            return
        minute = crowded[0]
        inputs = [p for m in (minute - 60, minute, minute + 60) for p in by_minute.get(m, [])]
        merged = model.merge_files([model.parse_file(p.read_bytes()) for p in inputs], receiver_check=receiver_check)
        outputs: dict[int, list[model.Record]] = {}
        for record in merged:
            outputs.setdefault(model.batch_of(record), []).append(record)
        written = set()
        for batch, records in outputs.items():
            data = model.file_bytes(records)
            hour, name = batch_relpath(batch, model.name_hash(data))
            path = root / CHANNEL / "chat" / hour / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.add(path)
        for path in inputs:
            if path not in written:
                path.unlink()
    raise AssertionError("the model's merge loop does not settle")


Sighting = tuple[str, str, float]  # (content as a canonical line, receiver, receive time)


def _content(record: model.Record) -> str:
    return model.line({**record, "receivers": {}, "time": 0, "time_range": 0})


def idless_sightings(records: list[model.Record]) -> set[Sighting]:
    """The receptions of id-less messages these records hold: what no merge may lose (an id-less
    record is one receiver's reception of a line, or several receivers' of one)."""
    return {
        (_content(r), name, when)
        for r in records
        if model.record_id(r) is None
        for name, when in r["receivers"].items()
    }


def archive_sightings(root: Path) -> set[Sighting]:
    return {s for path in names(root).values() for s in idless_sightings(model.parse_file(path.read_bytes()))}


@dataclass
class Round:
    theirs_fetched: int  # files the wubloader node's backfiller fetched from us
    ours_fetched: int  # files our sync fetched from it
    files: int  # files in our archive after the round's merges
    # Of theirs_fetched: files holding an id-less reception the wubloader node's archive held
    # nowhere (its merge deleted it: folded it into the record of another line of the same content)
    lost: int = 0
    beside: int = 0  # the others in a minute next to such a file (its merge rewrote that minute too)

    @property
    def moved(self) -> int:
        return self.theirs_fetched + self.ours_fetched

    @property
    def other(self) -> int:
        """Files the wubloader node fetched for another reason (receptions it holds in other lines)."""
        return self.theirs_fetched - self.lost - self.beside


def classify(ours: Path, theirs: Path, rels: list[str]) -> tuple[int, int]:
    """(lost, beside) among our files `rels` that the wubloader node is about to fetch (Round)."""
    held = archive_sightings(theirs)
    lost = {rel for rel in rels if idless_sightings(model.parse_file((ours / rel).read_bytes())) - held}
    minutes = {_minute(rel) for rel in lost}
    beside = {rel for rel in rels if rel not in lost and {_minute(rel) - 60, _minute(rel) + 60} & minutes}
    return len(lost), len(beside)


def run_cluster(ours: Path, theirs: Path, rounds: int, *, receiver_check: bool = False) -> list[Round]:
    known: set[str] = set()  # what our sync fetched before (it does not fetch a name twice)
    out = []
    for _ in range(rounds):
        mine, their = names(ours), names(theirs)
        to_them = sorted(set(mine) - set(their))
        to_us = sorted(set(their) - set(mine) - known)
        lost, beside = classify(ours, theirs, to_them)
        for rel in to_them:
            (theirs / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mine[rel], theirs / rel)
        for rel in to_us:
            (ours / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(their[rel], ours / rel)
        known |= set(to_us)
        merge_tree(str(ours))
        model_merge(theirs, receiver_check=receiver_check)
        out.append(Round(len(to_them), len(to_us), len(names(ours)), lost, beside))
    return out


def _minute(rel: str) -> int:
    hour, name = rel.split("/")[-2:]
    return model.hour_minute(hour, name)


def simulate(
    work: Path,
    minutes: int,
    *,
    ids_only: bool,
    rounds: int = 6,
    jitter: float = 0.35,
    seed: int = 1,
    receiver_check: bool = False,
) -> tuple[list[Round], int]:
    """(rounds, files in our archive at the end). `seed` draws the server's lines; `receiver_check`
    runs the wubloader node with upstream's receiver check made to fire."""
    lines = server_lines(minutes, seed=seed, ids_only=ids_only)
    record_node(work / "ours", work / "raw-ours", "host1", "Kx4pM", lines, seed=2, jitter=jitter)
    record_node(work / "theirs", work / "raw-theirs", "host2", "Qw7Rt", lines, seed=3, jitter=jitter)
    result = run_cluster(work / "ours", work / "theirs", rounds, receiver_check=receiver_check)
    return result, len(names(work / "ours"))


def main() -> None:
    """`python -m tests.mixed_cluster [MINUTES [SEED...]]`: the figures of docs/serve-sync.md."""
    minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    seeds = [int(a) for a in sys.argv[2:]] or [1]
    runs = [(False, 0.35, False), (False, 0.05, False), (True, 0.35, False), (False, 0.35, True)]
    for seed in seeds:
        for ids_only, jitter, receiver_check in runs:
            with tempfile.TemporaryDirectory() as tmp:
                result, files = simulate(
                    Path(tmp), minutes, ids_only=ids_only, jitter=jitter, seed=seed, receiver_check=receiver_check
                )
            what = "all records with ids" if ids_only else "Twitch-like (JOIN/PART, timeouts)"
            if receiver_check:
                what += ", upstream's receiver check firing"
            moved = ", ".join(f"{r.moved} ({r.theirs_fetched}+{r.ours_fetched})" for r in result)
            kinds = ", ".join(f"{r.lost}/{r.beside}/{r.other}" for r in result[1:])
            print(
                f"{what}, seed {seed}, {minutes} min, delay 50 ms + up to {jitter * 1000:.0f} ms: {files} files;"
                f" moved per round (theirs+ours): {moved}; theirs from round 2, lost/beside/other: {kinds}"
            )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

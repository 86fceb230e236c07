"""A simulated mixed cluster: one chat-archiver node and one wubloader node (the clean-room model in
tests/wubloader_model.py) recording the same channel and copying each other's chat files.

Each node's recorder sees the same server lines with its own delays; each archive is what our
replay writes (byte for byte what a wubloader archiver writes: ARCHIVE_FORMAT.md section 4). Then,
round after round: the wubloader node's backfiller fetches every file of ours whose *name* it does
not hold (it never remembers what it merged away), our `sync` fetches the names it neither holds
nor fetched before, and each node merges: ours with `merge_tree`, theirs with the model's merge
loop. `run_cluster` counts the files each side fetched per round.

Run `python -m tests.mixed_cluster` for the figures quoted in docs/serve-sync.md.
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


def model_merge(root: Path) -> None:
    """The wubloader node's merge loop on its folder (section 5): while a minute holds several
    files, merge that minute's files with its neighbours' (file by file, in listing order), write
    the result, then delete the inputs not written again."""
    for _ in range(1000):
        by_minute: dict[int, list[Path]] = {}
        for rel, path in sorted(names(root).items()):
            hour, name = rel.split("/")[-2:]
            minute = model.hour_minute(hour, name)
            by_minute.setdefault(minute, []).append(path)
        crowded = [m for m, paths in sorted(by_minute.items()) if len(paths) > 1]
        if not crowded:
            return
        minute = crowded[0]
        inputs = [p for m in (minute - 60, minute, minute + 60) for p in by_minute.get(m, [])]
        merged = model.merge_files([model.parse_file(p.read_bytes()) for p in inputs])
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


@dataclass
class Round:
    theirs_fetched: int  # files the wubloader node's backfiller fetched from us
    ours_fetched: int  # files our sync fetched from it
    files: int  # files in our archive after the round's merges

    @property
    def moved(self) -> int:
        return self.theirs_fetched + self.ours_fetched


def run_cluster(ours: Path, theirs: Path, rounds: int) -> list[Round]:
    known: set[str] = set()  # what our sync fetched before (it does not fetch a name twice)
    out = []
    for _ in range(rounds):
        mine, their = names(ours), names(theirs)
        to_them = sorted(set(mine) - set(their))
        to_us = sorted(set(their) - set(mine) - known)
        for rel in to_them:
            (theirs / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mine[rel], theirs / rel)
        for rel in to_us:
            (ours / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(their[rel], ours / rel)
        known |= set(to_us)
        merge_tree(str(ours))
        model_merge(theirs)
        out.append(Round(len(to_them), len(to_us), len(names(ours))))
    return out


def residue_files(root: Path) -> set[str]:
    """Files (by path) holding readings of one id-less content with different ranges from different
    receivers: upstream pairs those first come first served, so its result depends on the order it
    reads files in, and ours (a CRDT) keeps them apart."""
    out = set()
    for rel, path in names(root).items():
        seen: dict[str, list[tuple[float, float, frozenset[str]]]] = {}
        for record in model.parse_file(path.read_bytes()):
            if model.record_id(record) is None and record["time_range"] != 0:
                key = model.line({**record, "receivers": {}, "time": 0, "time_range": 0})
                reading = (record["time"], record["time_range"], frozenset(record["receivers"]))
                seen.setdefault(key, []).append(reading)
        for readings in seen.values():
            if len({r[:2] for r in readings}) > 1 and len(frozenset().union(*(r[2] for r in readings))) > 1:
                out.add(rel)
    return out


def residue_reach(root: Path) -> int:
    """Files in a minute holding residue (`residue_files`) or next to one: upstream's merge of a
    minute reads and rewrites its neighbours too, and a combined record can move to the next minute."""
    minutes = {_minute(rel) for rel in residue_files(root)}
    return sum(1 for rel in names(root) if {_minute(rel) + d for d in (-60, 0, 60)} & minutes)


def _minute(rel: str) -> int:
    hour, name = rel.split("/")[-2:]
    return model.hour_minute(hour, name)


def simulate(
    work: Path, minutes: int, *, ids_only: bool, rounds: int = 6, jitter: float = 0.35
) -> tuple[list[Round], int, int]:
    """(rounds, files in our archive at the end, of which residue files or their neighbours)."""
    lines = server_lines(minutes, ids_only=ids_only)
    record_node(work / "ours", work / "raw-ours", "host1", "Kx4pM", lines, seed=2, jitter=jitter)
    record_node(work / "theirs", work / "raw-theirs", "host2", "Qw7Rt", lines, seed=3, jitter=jitter)
    result = run_cluster(work / "ours", work / "theirs", rounds)
    return result, len(names(work / "ours")), residue_reach(work / "ours")


def main() -> None:
    minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    for ids_only, jitter in ((False, 0.35), (False, 0.05), (True, 0.35)):
        with tempfile.TemporaryDirectory() as tmp:
            result, files, residue = simulate(Path(tmp), minutes, ids_only=ids_only, jitter=jitter)
        what = "all records with ids" if ids_only else "Twitch-like (JOIN/PART, timeouts)"
        moved = ", ".join(f"{r.moved} ({r.theirs_fetched}+{r.ours_fetched})" for r in result)
        print(
            f"{what}, {minutes} min, delay 50 ms + up to {jitter * 1000:.0f} ms: {files} files;"
            f" moved per round (theirs+ours): {moved}; files in or next to a residue minute: {residue}"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

"""sync: fetch what peers hold and this archive lacks, as wubloader's backfiller does for chat.

`plan` (pure) decides what to fetch from a peer's listings and refuses hostile names; `client`
talks HTTP with every limit a bad peer needs; `shell` fetches, verifies, writes
atomically and merges (docs/serve-sync.md).
"""

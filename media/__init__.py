"""The media stage: the images chat showed, kept beside the archive as wubloader keeps them.

- `media.layout` (pure): where each file lives under ROOT (`emotes/`, `media/`, `images/`), the CDN
  URLs, the emote ids of a record, the name grammar a peer's listing must obey.
- `media.sniff` (pure): what kind of image some bytes are, by their magic bytes.
- `media.store` (I/O): the folders under ROOT, atomic writes, the content-addressed image store.
"""

"""The recorder: capture Twitch or IRCv3 chat over WebSocket into raw recordings, losing nothing.

Pure parts (no I/O, no clock): `channels` (name validation), `limits` (backoff, join rate),
`wire` (frames to lines, a cheap peek), `session` (one connection's protocol rules).
The shell: `connection` (one thread per WebSocket), `recorder` (the supervisor), `events` (what
connections report to the supervisor, frozen), `metrics`, `rawwriter`.
"""

"""The live archive: follow raw recordings while recorders write them (`follow`), resume from a
checkpoint after any crash (`checkpoint`), and run recorder + follower as one host (`supervisor`).

Built on the replay engine, so live and offline are one algorithm (docs/live.md).
"""

"""`make run`'s demo: a Twitch-like chat server on loopback and the live job run against it.

Not part of the product (not installed); tests import the server from here, never the other way round.
"""

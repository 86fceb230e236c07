"""Deterministic replay of raw chat recordings into a wubloader-compatible chat archive.

The package is a pure core (parsing, time reconstruction, batching, canonical bytes) plus two small
I/O modules: `rawfile` (reading and writing raw recordings) and `store` (batch files on disk).
"""

__version__ = "0.1.0"

"""Deterministic replay of raw chat recordings into a wubloader-compatible chat archive.

A pure core (timestamp rules, batching, the engine fed event by event) plus `shell`, the one-call
wrapper that reads raw recordings and writes batch files through `formats`.
"""

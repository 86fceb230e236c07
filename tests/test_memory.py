"""formats.memory.gc_paused: the collector is off inside and back as it was after, also on error."""

from __future__ import annotations

import gc

import pytest

from formats.memory import gc_paused


def test_gc_paused_restores_the_previous_state() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause restores "off", not "on"
    assert gc.isenabled()
    with pytest.raises(KeyError), gc_paused():
        raise KeyError("x")
    assert gc.isenabled()

"""``gc_paused`` blocks overlapping in threads leave the collector as it was before the first."""

from __future__ import annotations

import gc
import threading

from s3pump.gcpause import gc_paused


def test_overlapping_blocks_in_two_threads_enable_the_collector_again() -> None:
    """A enters, B enters, A leaves, B leaves: the collector stays off until B leaves, then is on
    again (with a per-block saved state, A's exit turned it on under B, and B, which had seen it off,
    could leave it off for good when the two interleaved)."""
    assert gc.isenabled()
    inside_b_after_a: list[bool] = []
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with gc_paused():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with gc_paused():
            b_in.set()
            a_out.wait(5)
            inside_b_after_a.append(gc.isenabled())  # A left, B is still inside

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert inside_b_after_a == [False]
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled_and_an_error_still_restores() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    try:
        with gc_paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()

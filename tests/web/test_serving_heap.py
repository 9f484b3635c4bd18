"""A serving process settles its heap once started: full garbage collections no longer
walk the start-up objects (they paused every request 80-90 ms), and garbage made while
serving is still collected."""

from __future__ import annotations

import gc
import weakref

import pytest
from web_support import serving

from redress.config import Settings
from redress.web.app import create_app

pytestmark = pytest.mark.anyio


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


async def test_a_serving_app_settles_its_heap_and_still_collects_new_garbage(
    settings: Settings,
) -> None:
    before = gc.get_freeze_count()
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == before  # apps in tests and tools leave the heap be
    served = create_app(settings, settle=True)
    try:
        async with served.router.lifespan_context(served):
            assert gc.get_freeze_count() > before + 10_000
            first, second = _Node(), _Node()
            first.peer, second.peer = second, first  # a cycle: only the collector frees it
            alive = weakref.ref(first)
            del first, second
            gc.collect()
            assert alive() is None
    finally:
        gc.unfreeze()  # this test process is not a server


async def test_collection_pauses_are_in_the_metrics_while_the_app_runs(
    settings: Settings,
) -> None:
    hooks = list(gc.callbacks)
    async with serving(settings) as api:
        gc.collect()  # a full collection, timed like any other
        text = (await api.client.get("/metrics")).text
        assert 'redress_gc_pause_seconds_count{generation="2"}' in text
        count = next(
            line
            for line in text.splitlines()
            if line.startswith('redress_gc_pause_seconds_count{generation="2"}')
        )
        assert float(count.rsplit(" ", 1)[1]) >= 1
    assert gc.callbacks == hooks  # a stopped app leaves no hook behind


async def test_scrapes_answer_and_count_while_collections_run_constantly(
    settings: Settings,
) -> None:
    # A collection starts in whichever thread allocates, scrapes included: the hook
    # keeps plain counts and takes none of the metrics library's locks.
    async with serving(settings) as api:
        threshold = gc.get_threshold()
        gc.set_threshold(1)  # a collection on (nearly) every allocation
        try:
            for _ in range(3):
                text = (await api.client.get("/metrics")).text
        finally:
            gc.set_threshold(*threshold)
        assert 'redress_gc_pause_seconds_count{generation="0"}' in text

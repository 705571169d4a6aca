"""Lookups of one loop turn in one query: every caller answered, whatever ends the query."""

from __future__ import annotations

import asyncio

import pytest

from gateway.keystore.base import StoreError
from gateway.keystore.batch import BatchedLookup


class Table:
    """A store stand-in that records each query: the batching is what is under test."""

    def __init__(self, rows: dict[str, str | Exception], *, error: Exception | None = None) -> None:
        self.rows = rows
        self.error = error
        self.queries: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self, keys: list[str]) -> dict[str, str | Exception]:
        self.queries.append(keys)
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {k: self.rows[k] for k in keys if k in self.rows}


async def test_lookups_of_one_turn_share_one_query_and_each_gets_its_answer() -> None:
    table = Table({"a": "A", "b": "B"})
    lookup = BatchedLookup(table.fetch, max_batch=2)
    answers = await asyncio.gather(*(lookup.get(k) for k in ["a", "x", "b", "a"]))
    assert answers == ["A", None, "B", "A"]
    assert table.queries == [["a", "x"], ["b"]]  # three distinct keys, batches of two


async def test_a_failed_query_reaches_every_caller_with_its_own_error() -> None:
    table = Table({}, error=StoreError("database is locked"))
    lookup = BatchedLookup(table.fetch)
    results = await asyncio.gather(lookup.get("a"), lookup.get("b"), return_exceptions=True)
    assert all(isinstance(r, StoreError) and str(r) == "database is locked" for r in results)
    assert results[0] is not results[1]


async def test_an_unreadable_row_fails_only_its_own_key() -> None:
    lookup = BatchedLookup(Table({"a": "A", "bad": ValueError("corrupt row")}).fetch)
    good, bad = asyncio.ensure_future(lookup.get("a")), asyncio.ensure_future(lookup.get("bad"))
    with pytest.raises(ValueError, match="corrupt row"):
        await bad
    assert await good == "A"


async def test_a_query_cancelled_before_it_starts_leaves_no_caller_waiting() -> None:
    table = Table({"a": "A"})
    lookup = BatchedLookup(table.fetch)
    caller = asyncio.ensure_future(lookup.get("a"))
    await asyncio.sleep(0)  # the caller has asked; the flush is due at the end of this turn
    await asyncio.sleep(0)  # the flush has made the query's task, not yet run
    for task in list(lookup._running):
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 5)


async def test_callers_that_went_away_are_not_looked_up() -> None:
    table = Table({"a": "A"})
    lookup = BatchedLookup(table.fetch)
    gone = asyncio.ensure_future(lookup.get("gone"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await lookup.get("a") == "A"
    assert table.queries == [["a"]]


def test_a_loop_that_stopped_mid_turn_does_not_stall_the_next_one() -> None:
    table = Table({"a": "A"})
    lookup = BatchedLookup(table.fetch)
    old = asyncio.new_event_loop()
    try:
        async def ask_and_leave() -> asyncio.Task[str | None]:
            return asyncio.ensure_future(lookup.get("a"))  # its flush never runs: the loop stops first
        left = old.run_until_complete(ask_and_leave())
        left._log_destroy_pending = False  # type: ignore[attr-defined]  # abandoned with its loop, on purpose
    finally:
        old.close()
    new = asyncio.new_event_loop()
    try:
        assert new.run_until_complete(asyncio.wait_for(lookup.get("a"), 5)) == "A"
    finally:
        new.close()

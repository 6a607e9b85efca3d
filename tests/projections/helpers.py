"""Shared by the projection tests: read-model snapshots and a running worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from events.postgres import PostgresEventStore
from projections import ALL_PROJECTIONS
from projections.model import Projection, View, quote
from projections.runner import ProjectionWorker, all_views


async def snapshot(store: PostgresEventStore, projections: Sequence[Projection]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the projections own, in key order, as plain tuples."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for p in projections:
        for t in p.tables:
            rows = await store.pool.fetch(f"select * from {quote(t.schema)}.{quote(t.name)} order by {quote(t.key)}")
            tables[t.qualified] = [tuple(r) for r in rows]
    return tables


def every_projection() -> list[Projection]:
    return [cls() for cls in ALL_PROJECTIONS]


@contextlib.asynccontextmanager
async def running(
    store: PostgresEventStore,
    projections: Sequence[Projection],
    *,
    batch_size: int = 2000,
    views: Sequence[View] | None = None,
) -> AsyncIterator[list[ProjectionWorker]]:
    """Workers for `projections`, started (tables exist) and stopped after the block."""
    views = all_views(every_projection()) if views is None else views
    workers = [ProjectionWorker(p, store, views=views, batch_size=batch_size) for p in projections]
    async with anyio.create_task_group() as tg:
        for w in workers:
            await tg.start(w.run)
        yield workers
        tg.cancel_scope.cancel()


async def caught_up(store: PostgresEventStore, workers: Sequence[ProjectionWorker]) -> None:
    """Until the workers have folded everything committed so far.

    Not `head_position()`: that is the safe horizon, which an open transaction (another worker's)
    can hold below events already committed, and the workers would seem done too early.
    """
    head = int(await store.pool.fetchval("select coalesce(max(position), 0) from touchline.events"))
    with anyio.fail_after(20):
        for w in workers:
            await w.wait_position(head)

"""lead_hunter.enqueue_craigslist_discover_v1: the spec's ops SQL appends the same event as the command."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from events.catalog import CrawlTaskEnqueued, crawl_task_stream
from events.postgres import PostgresEventStore
from projections.crawl_tasks import CrawlTasksProjection
from tests.projections.helpers import caught_up, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000b7")


async def test_the_sql_function_enqueues_a_discover_task(pg_store: PostgresEventStore) -> None:
    # The spec's query, with its placeholder filled in.
    query = "select lead_hunter.enqueue_craigslist_discover_v1('<account_id>'::uuid, 'miami') as enqueued_task_id;"
    task_id = await pg_store.pool.fetchval(query.replace("<account_id>", str(ACCOUNT)))
    (env,) = await pg_store.read_stream(crawl_task_stream(task_id))
    assert env.event == CrawlTaskEnqueued(
        task_id=task_id, account_id=ACCOUNT, task_type="discover", city="miami",
        enqueued_by="sql:enqueue_craigslist_discover_v1",
    )  # fmt: skip
    assert env.account_id == ACCOUNT and env.correlation_id == env.event_id
    assert (await pg_store.verify()).ok  # hashed and chained like any append
    async with running(pg_store, [CrawlTasksProjection()]) as workers:
        await caught_up(pg_store, workers)
    row = await pg_store.pool.fetchrow(
        "select id, status, task_type, city from lead_hunter.craigslist_tasks_v1 where account_id = $1", ACCOUNT
    )
    assert row is not None and tuple(row) == (task_id, "queued", "discover", "miami")


@pytest.mark.parametrize(
    ("account", "city", "message"),
    [
        (None, "miami", "account is required"),
        (ACCOUNT, "miami'; drop table x; --", "is not a city name"),
        (ACCOUNT, "", "is not a city name"),
    ],
)
async def test_bad_arguments_are_refused_and_append_nothing(
    pg_store: PostgresEventStore, account: uuid.UUID | None, city: str, message: str
) -> None:
    with pytest.raises(asyncpg.PostgresError, match=message):
        await pg_store.pool.fetchval("select lead_hunter.enqueue_craigslist_discover_v1($1, $2)", account, city)
    assert await pg_store.head_position() == 0

"""A worker process for the process tests: one actor on the shared consumer, until SIGTERM.

    python -m tests.actors.actor_worker --database-url URL --nats-url URL --prefix P --stream S
        [--ack-wait SECONDS] [--crash-after-append FLAGFILE]

Prints `ready` once it takes work, and its stats as one JSON line when it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import ClassVar

import anyio
import msgspec

from actors.runtime import Actor, ActorRunner, ConsumerSettings, Reaction
from events.bus import connect
from events.catalog import Event, LeadIngested, LeadStatusChanged
from events.envelope import Envelope
from events.postgres import open_postgres_store
from events.settings import Settings
from gateways.logs import configure_logging


class Contact(Actor):
    """Marks each ingested lead contacted; optionally dies right after its append, before the ack."""

    name = "contact"
    handles: ClassVar[tuple[type[Event], ...]] = (LeadIngested,)

    def __init__(self, crash_flag: Path | None) -> None:
        self.crash_flag = crash_flag

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        assert isinstance(event, LeadIngested)
        await reaction.emit(
            env.stream_id,
            [
                LeadStatusChanged(
                    lead_id=event.lead_id, account_id=event.account_id, status="contacted", reason=str(os.getpid())
                )
            ],
        )
        if self.crash_flag is not None and not self.crash_flag.exists():
            self.crash_flag.write_text(str(env.event_id))
            os.kill(os.getpid(), signal.SIGKILL)  # appended, not acknowledged


async def main(args: argparse.Namespace) -> None:
    configure_logging(level="warning")  # stderr: stdout carries `ready` and the stats
    settings = Settings(
        database_url=args.database_url, nats_url=args.nats_url, subject_prefix=args.prefix, stream_name=args.stream
    )
    nc = await connect(args.nats_url, name=f"worker-{os.getpid()}")
    actor = Contact(Path(args.crash_after_append) if args.crash_after_append else None)
    consumer = ConsumerSettings(ack_wait_s=args.ack_wait, fetch_timeout_s=0.2, concurrency=4)
    try:
        async with open_postgres_store(args.database_url, writers=1) as store, anyio.create_task_group() as tg:
            runner = ActorRunner(actor, store=store, nc=nc, settings=settings, consumer=consumer)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                await tg.start(runner.run)
                print("ready", flush=True)
                async for _ in signals:
                    await runner.stop(5.0)
                    break
            tg.cancel_scope.cancel()
    finally:
        await nc.close()
    print(json.dumps({"pid": os.getpid(), **msgspec.structs.asdict(runner.stats)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--ack-wait", type=float, default=30.0)
    parser.add_argument("--crash-after-append")
    anyio.run(main, parser.parse_args())
    sys.exit(0)

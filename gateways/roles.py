"""The roles a `touchline up` process can run, and the supervised children behind them."""

from __future__ import annotations

from collections.abc import Iterable

from nats.aio.client import Client as NATS

from actors import ALL_ACTORS
from actors.hunter import Hunter, HunterSettings
from actors.runtime import ActorRunner
from actors.supervisor import Supervisor
from events.errors import ConfigError
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.command_bus import CommandService
from projections import ALL_PROJECTIONS
from projections.model import Projection
from projections.runner import ProjectionWorker, all_views


def known_roles() -> dict[str, str]:
    roles = {
        "relay": "publishes the event log to JetStream",
        "projections": "keeps every read model up to date (or projection:NAME for one)",
        "hunter": "works the lead programs' crawl tasks (Craigslist, Encuentra24) in Chromium",
        "http": "serves the HTTP API, the console, the webhooks and the carrier streams",
        "commands": "carries out the commands services send on the bus ({prefix}.commands.{account}.{name})",
    }
    for cls in ALL_ACTORS:
        roles[cls.name] = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "actor"
    return roles


def parse_roles(value: str | None) -> set[str]:
    """`None`: every role. Else comma-separated names; `projection:NAME` runs one read model."""
    every = set(known_roles())
    if not value:
        return every
    roles = {r.strip() for r in value.split(",") if r.strip()}
    projections = {p.name for p in ALL_PROJECTIONS}
    unknown = sorted(r for r in roles if r not in every and r.removeprefix("projection:") not in projections)
    if unknown or not roles:
        raise ConfigError(
            f"unknown role {', '.join(unknown) or '(none given)'}; known roles: {', '.join(sorted(every))}, "
            f"or projection:NAME with NAME one of {', '.join(sorted(projections))}"
        )
    return roles


def _projections_for(roles: Iterable[str]) -> list[type[Projection]]:
    roles = set(roles)
    if "projections" in roles:
        return list(ALL_PROJECTIONS)
    return [p for p in ALL_PROJECTIONS if f"projection:{p.name}" in roles]


def supervise_roles(roles: set[str], *, store: PostgresEventStore, nc: NATS, settings: Settings) -> Supervisor:
    """A supervisor for the projections and actors among `roles` (the relay runs on its own)."""
    supervisor = Supervisor()
    views = all_views([cls() for cls in ALL_PROJECTIONS])
    for cls in _projections_for(roles):
        supervisor.add(
            f"projection:{cls.name}",
            lambda cls=cls: ProjectionWorker(cls(), store, views=views),  # type: ignore[misc]
        )
    if "commands" in roles:
        supervisor.add("commands", lambda: CommandService(store, nc, settings))
    if "hunter" in roles:
        settings_ = HunterSettings.from_env()  # a bad CL_* value stops the start, naming the variable
        supervisor.add("hunter", lambda: Hunter(store, settings_))
    for actor in ALL_ACTORS:
        if actor.name in roles:
            supervisor.add(
                f"actor:{actor.name}",
                lambda actor=actor: ActorRunner(actor(), store=store, nc=nc, settings=settings),  # type: ignore[misc]
            )
    return supervisor

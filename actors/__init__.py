"""The actor runtime (supervision, consumers, timers) and the long-lived actors `touchline up` runs."""

from __future__ import annotations

from actors.runtime import Actor

# Every actor kind `touchline up` runs, each also a role of its own (`--role <name>`). The
# domain actors (orchestrator, cadence, dispatch, hunter, voice sessions, Command OS) register
# here as they are built.
ALL_ACTORS: tuple[type[Actor], ...] = ()

__all__ = ["ALL_ACTORS", "Actor"]

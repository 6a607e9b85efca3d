"""The actor runtime (supervision, consumers, timers) and the long-lived actors `touchline up` runs."""

from __future__ import annotations

from actors.cadence import CadenceRunner
from actors.dispatch import DispatchEngine
from actors.orchestrator import TouchOrchestrator
from actors.runtime import Actor

# Every actor kind `touchline up` runs, each also a role of its own (`--role <name>`). The other
# domain actors (dispatch, hunter, voice sessions, Command OS) register here as they are built.
ALL_ACTORS: tuple[type[Actor], ...] = (CadenceRunner, TouchOrchestrator, DispatchEngine)

__all__ = ["ALL_ACTORS", "Actor"]

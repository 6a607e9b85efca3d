"""Long-lived actors (orchestrator, cadence, dispatch, hunter, voice sessions, Command OS): to come."""

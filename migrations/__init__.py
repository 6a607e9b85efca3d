"""Ordered SQL migrations for the event log and the read models (applied by events.migrate)."""

"""Every edge: the CLI, embedded servers, and (to come) HTTP, carrier WebSockets, providers."""

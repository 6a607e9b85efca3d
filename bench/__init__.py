"""Benchmarks and fault drills that run the whole system (`touchline up` processes) from outside."""

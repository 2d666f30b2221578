"""Simulated hardware and the harness that runs the whole chain on pseudo-terminals with faults injected.

Only tests, benchmarks and the demo import this package.
"""

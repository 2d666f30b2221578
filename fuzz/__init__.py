"""Coverage-guided fuzzing of every parser that takes outside bytes (``make fuzz``; docs/reliability.md).

One module per target exposes ``check(data)``, which raises only when an invariant is broken (a bug), and
``seeds()``, the starting corpus built at run time from the shared fixtures and the project's encoders.
``python -m fuzz`` runs them under atheris; tests/fuzz runs the same checks over a fixed mutated corpus.
Nothing here is imported by the project's packages.
"""

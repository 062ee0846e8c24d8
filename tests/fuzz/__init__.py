"""Fuzz targets, one per parser (see docs/architecture.md, "Fuzzing").

`targets` holds the targets and the invariant each one checks, `seeds` their seed corpora
(valid inputs to mutate from), `__main__` the coverage-guided run of `make fuzz` (atheris),
`test_fuzz` the short deterministic run and the replay of `corpus/<target>/` in `make test`.
"""

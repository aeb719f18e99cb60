"""Pipelines: one module per command, each tying a `store.Run` to the pure modules it composes.

Only this package, `report`, `explorer` and `cli` import `store` or `plots`; the pure modules
(stats, analysis, samplers, paths, evaluation) take arrays and return typed results.
"""

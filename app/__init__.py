"""The top layer: the entry points that wire the hub together.

`cli` (the `ioxhub` command) and `console` (all terminal rendering), `demo` (the main job end to end),
`airflow_dags` (the DAG factory that the thin files in dags/ call) and `airflow_failures` (its callbacks).
Nothing below imports this package: see docs/architecture.md and tests/unit/test_layers.py.
"""

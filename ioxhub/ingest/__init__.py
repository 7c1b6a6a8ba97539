"""The ingest engine the DAGs call: consume -> verify -> decode -> harmonize -> write -> commit."""

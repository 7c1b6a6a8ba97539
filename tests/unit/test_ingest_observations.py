"""Harmonizing one chunk: a refused row names its field, its reason and its source line."""
from __future__ import annotations

import datetime as dt

import numpy as np

from ioxhub.ingest.observations import harmonize_chunk

PUBLISHED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def chunk(values, unit_mult) -> dict:
    n = len(values)
    return {"event_id": "e", "release_id": "r", "strings": ["X.IND", "FRA", "2024", "KG", "f.csv"],
            "indicator": [0] * n, "ref_area": [1] * n, "counterpart_area": [-1] * n, "commodity": [-1] * n,
            "period": [2] * n, "value": np.array(values, float), "missing_values": [], "unit": [3] * n,
            "unit_mult": unit_mult, "obs_status": [-1] * n, "attributes": [], "source_file": [4] * n,
            "source_line": list(range(2, n + 2))}


def test_a_value_that_overflows_once_rescaled_is_refused_on_the_value_field():
    result = harmonize_chunk(chunk([1.5, 1e300], [3, 18]), "dataset_chunk/v1", PUBLISHED)
    assert result.harmonized["value"].to_pylist() == [1500.0]
    refused = result.refused.to_pylist()
    assert [(r["field"], r["reason"], r["source_line"], r["value"]) for r in refused] == \
        [("value", "value-overflow", 3, "1e+300")]

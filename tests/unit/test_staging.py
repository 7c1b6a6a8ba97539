"""What an expired release was missing, in words (the expiry itself with real S3 and broker:
tests/integration/test_staging_expiry.py)."""
from __future__ import annotations

import pytest

from ioxhub.ingest.staging import describe_missing


@pytest.mark.parametrize("chunks, count, manifest, text", [
    ({0, 1}, 5, False, "the manifest and chunks 2-4 of 5"),
    ({0, 2, 4}, 6, True, "chunks 1, 3, 5 of 6"),
    ({0, 1, 3, 4, 5, 8}, 10, True, "chunks 2, 6-7, 9 of 10"),
    ({1}, 2, True, "chunk 0 of 2"),
    ({0}, 1, False, "the manifest"),
    (set(), 3, True, "chunks 0-2 of 3"),
    (set(), None, False, "the manifest and its chunks (none staged)"),
])
def test_missing_parts_are_named(chunks, count, manifest, text):
    assert describe_missing(chunks, count, manifest) == text

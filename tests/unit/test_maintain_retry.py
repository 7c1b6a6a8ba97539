"""`ioxhub maintain` retries a step whose commit conflicted once, on a freshly loaded table, and lets a
second conflict through for the caller to report (the steps themselves: tests/integration/test_maintain.py)."""
from __future__ import annotations

import pytest
from pyiceberg.exceptions import CommitFailedException

from ioxhub.maintain import _retry_once


class Loads:
    """What _retry_once asks of `Tables`: the table loaded anew, counted."""

    def __init__(self):
        self.count = 0

    def load(self, namespace, name):
        self.count += 1
        return f"{namespace}.{name} load {self.count}"


class Table:
    def name(self):
        return ("hub", "curated", "x")


def test_a_conflict_is_retried_once_on_a_fresh_load():
    seen = []

    def step(table):
        seen.append(table)
        if len(seen) == 1:
            raise CommitFailedException("Table has been updated by another process")

    _retry_once(Loads(), Table(), step)
    assert seen == ["curated.x load 1", "curated.x load 2"]


def test_a_second_conflict_is_left_to_the_caller():
    seen = []

    def step(table):
        seen.append(table)
        raise CommitFailedException("Table has been updated by another process")

    with pytest.raises(CommitFailedException):
        _retry_once(Loads(), Table(), step)
    assert len(seen) == 2

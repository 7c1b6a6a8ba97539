"""YAML with lines: each key and item knows its line, duplicate keys and bad YAML are one-line errors."""
from __future__ import annotations

import pytest

from ioxhub import yamlfile
from ioxhub.errors import IoxhubError

TEXT = """\
# a comment
name: first
items:
  - 1
  - {a: x,
     b: 2019-13-01}
nested:
  deep: [p, q]
"""


class Oops(IoxhubError):
    pass


def test_lines_of_keys_and_items():
    doc = yamlfile.load(TEXT, "f.yaml", Oops)
    assert doc == {"name": "first", "items": [1, {"a": "x", "b": "2019-13-01"}], "nested": {"deep": ["p", "q"]}}
    assert (doc.line, doc.line_of("name"), doc.line_of("items"), doc.line_of("nested")) == (2, 2, 3, 7)
    assert doc["items"].line == 4 and doc["items"].item_lines == [4, 5]
    assert (doc["items"][1].line_of("a"), doc["items"][1].line_of("b")) == (5, 6)
    assert doc["nested"]["deep"].line_of(1) == 8
    assert doc.line_of("absent") == 2 and doc["items"].line_of(9) == 4     # the container's own line


def test_dates_stay_text():
    assert yamlfile.load("when: 2024-02-30\nok: 2024-02-01\n", "f.yaml", Oops) == \
        {"when": "2024-02-30", "ok": "2024-02-01"}


def test_a_duplicate_key_is_refused_with_both_lines():
    with pytest.raises(Oops, match=r"^f\.yaml:3: duplicate key 'a' \(also on line 1\)$"):
        yamlfile.load("a: 1\nb: 2\na: 3\n", "f.yaml", Oops)


def test_bad_yaml_names_line_and_column():
    with pytest.raises(Oops, match=r"^f\.yaml:2:\d+: not valid YAML: "):
        yamlfile.load("a: [1, 2\nb: 3\n", "f.yaml", Oops)


def test_a_mapping_as_key_is_refused():
    with pytest.raises(Oops, match=r"^f\.yaml:1:\d+: not valid YAML: a mapping key must be a plain value"):
        yamlfile.load("? {x: 1}\n: 2\n", "f.yaml", Oops)

"""SDMX time periods (ioxhub.harmonize.periods)."""
from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest

from ioxhub.harmonize.periods import BAD, Period, parse_period, parse_period_array

D = dt.date


@pytest.mark.parametrize("value, freq, start, end, label", [
    ("2024", "A", D(2024, 1, 1), D(2024, 12, 31), "2024"),
    ("2024-A1", "A", D(2024, 1, 1), D(2024, 12, 31), "2024"),
    (2024, "A", D(2024, 1, 1), D(2024, 12, 31), "2024"),
    ("2024-S1", "S", D(2024, 1, 1), D(2024, 6, 30), "2024-S1"),
    ("2024s2", "S", D(2024, 7, 1), D(2024, 12, 31), "2024-S2"),
    ("2024-Q1", "Q", D(2024, 1, 1), D(2024, 3, 31), "2024-Q1"),
    ("2023Q4", "Q", D(2023, 10, 1), D(2023, 12, 31), "2023-Q4"),
    (" 2024-q2 ", "Q", D(2024, 4, 1), D(2024, 6, 30), "2024-Q2"),
    ("2024-M03", "M", D(2024, 3, 1), D(2024, 3, 31), "2024-03"),
    ("2024-03", "M", D(2024, 3, 1), D(2024, 3, 31), "2024-03"),
    ("2024M3", "M", D(2024, 3, 1), D(2024, 3, 31), "2024-03"),
    ("2024-02", "M", D(2024, 2, 1), D(2024, 2, 29), "2024-02"),
    ("2023-M02", "M", D(2023, 2, 1), D(2023, 2, 28), "2023-02"),
    ("2024-W05", "W", D(2024, 1, 29), D(2024, 2, 4), "2024-W05"),
    ("2024W1", "W", D(2024, 1, 1), D(2024, 1, 7), "2024-W01"),
    ("2021-W01", "W", D(2021, 1, 4), D(2021, 1, 10), "2021-W01"),
    ("2020-W53", "W", D(2020, 12, 28), D(2021, 1, 3), "2020-W53"),
    ("2024-03-15", "D", D(2024, 3, 15), D(2024, 3, 15), "2024-03-15"),
    ("2024-02-29", "D", D(2024, 2, 29), D(2024, 2, 29), "2024-02-29"),
])
def test_valid(value, freq, start, end, label):
    assert parse_period(value) == Period(freq, start, end, label, None)


@pytest.mark.parametrize("value", [
    "2024-Q5", "2024-Q0", "2024-13", "2024-00", "2024-M13", "2024-M00", "2024-S3", "2024-S0", "2024-W00",
    "2021-W53", "2024-W54", "2024-02-30", "2023-02-29", "2024-3-15", "abc", "24", "20245", "0000",
    "2024-", "2024-A2", "2024-03-15T00:00", "2024/03", "٢٠٢٤", "2024-Q1-01", "Q1-2024",
])
def test_invalid(value):
    assert parse_period(value) == Period(None, None, None, None, BAD)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_absent(value):
    assert parse_period(value) == Period(None, None, None, None, None)


def test_every_day_falls_in_its_iso_week_and_month():
    day = D(2019, 12, 20)
    while day < D(2027, 1, 10):
        year, week, _ = day.isocalendar()
        w = parse_period(f"{year}-W{week:02d}")
        assert w.start <= day <= w.end and w.start.weekday() == 0 and (w.end - w.start).days == 6
        m = parse_period(day.strftime("%Y-%m"))
        assert m.start <= day <= m.end
        assert parse_period(day.isoformat()).start == day
        day += dt.timedelta(days=1)


@pytest.mark.parametrize("pattern, count", [("{y}-S{n}", 2), ("{y}-Q{n}", 4), ("{y}-M{n:02d}", 12)])
def test_sub_annual_periods_tile_the_year(pattern, count):
    for year in (1999, 2000, 2023, 2024):
        periods = [parse_period(pattern.format(y=year, n=n)) for n in range(1, count + 1)]
        assert periods[0].start == D(year, 1, 1) and periods[-1].end == D(year, 12, 31)
        for a, b in zip(periods, periods[1:]):
            assert a.end + dt.timedelta(days=1) == b.start


def test_labels_are_fixed_points():
    for value in ("2024", "2024-S2", "2024-Q3", "2024-M07", "2024W9", "2024-07-04"):
        label = parse_period(value).label
        assert parse_period(label).label == label


@pytest.mark.parametrize("dictionary", [False, True])
def test_vectorized_equals_scalar(dictionary):
    rng = random.Random(9)
    pool = [None, "", "abc", "2024-Q5", "2021-W53"]
    for year in rng.sample(range(1990, 2031), 10):
        pool += [str(year), f"{year}-S{rng.randint(1, 2)}", f"{year}-Q{rng.randint(1, 4)}",
                 f"{year}-M{rng.randint(1, 12):02d}", f"{year}-{rng.randint(1, 13):02d}",
                 f"{year}-W{rng.randint(1, 53):02d}", f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"]
    values = [rng.choice(pool) for _ in range(5000)]
    column = pa.array(values, pa.string())
    result = parse_period_array(column.dictionary_encode() if dictionary else column)
    expected = [parse_period(v) for v in values]
    assert result.freq.to_pylist() == [e.freq for e in expected]
    assert result.start.to_pylist() == [e.start for e in expected]
    assert result.end.to_pylist() == [e.end for e in expected]
    assert result.label.to_pylist() == [e.label for e in expected]
    assert result.reason.to_pylist() == [e.reason for e in expected]
    assert result.start.type == pa.date32() and result.end.type == pa.date32()
    assert result.invalid.to_pylist() == [e.reason is not None for e in expected]

"""SDMX time periods -> frequency, first day, last day (inclusive) and one normalized label.

Scalar: `parse_period(value) -> Period`. Vectorized: `parse_period_array(values) -> PeriodColumns` (freq,
start date32, end date32 inclusive, label, reason): each distinct value parsed once, then gathered.
Accepted forms, labels and "bad-period": docs/harmonization.md.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from typing import NamedTuple

import pyarrow as pa

from ioxhub.harmonize.columns import ArrayLike, Codebook

BAD = "bad-period"
FREQUENCIES = ("A", "S", "Q", "M", "W", "D")

_PATTERN = re.compile(
    r"(?P<year>\d{4})(?:"
    r"(?P<annual>-?A1)?"
    r"|-?S(?P<half>\d)"
    r"|-?Q(?P<quarter>\d)"
    r"|-?M(?P<month_m>\d{1,2})|-(?P<month>\d{2})"
    r"|-?W(?P<week>\d{1,2})"
    r"|-(?P<dmonth>\d{2})-(?P<day>\d{2})"
    r")",
    re.ASCII,
)


class Period(NamedTuple):
    """One parsed period; all fields None except `reason` when it is not a valid period."""

    freq: str | None
    start: dt.date | None
    end: dt.date | None
    label: str | None
    reason: str | None


class PeriodColumns(NamedTuple):
    """Vectorized result: freq, start and end (date32, end inclusive), label, reason (null = ok).

    The string columns are dictionary<int32, string>.
    """

    freq: pa.Array
    start: pa.Array
    end: pa.Array
    label: pa.Array
    reason: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        return self.reason.is_valid()


_ABSENT = Period(None, None, None, None, None)
_BAD = Period(None, None, None, None, BAD)


def _months(year: int, first: int, count: int) -> tuple[dt.date, dt.date]:
    last = first + count - 1
    return dt.date(year, first, 1), dt.date(year, last, calendar.monthrange(year, last)[1])


def _parse(text: str) -> Period:
    m = _PATTERN.fullmatch(text)
    if m is None:
        return _BAD
    year = int(m["year"])
    if year < 1:
        return _BAD
    g = m.groupdict()
    if g["half"] is not None:
        n = int(g["half"])
        if not 1 <= n <= 2:
            return _BAD
        return Period("S", *_months(year, 6 * n - 5, 6), f"{year:04d}-S{n}", None)
    if g["quarter"] is not None:
        n = int(g["quarter"])
        if not 1 <= n <= 4:
            return _BAD
        return Period("Q", *_months(year, 3 * n - 2, 3), f"{year:04d}-Q{n}", None)
    month = g["month_m"] or g["month"]
    if month is not None:
        n = int(month)
        if not 1 <= n <= 12:
            return _BAD
        return Period("M", *_months(year, n, 1), f"{year:04d}-{n:02d}", None)
    if g["week"] is not None:
        n = int(g["week"])
        try:
            monday = dt.date.fromisocalendar(year, n, 1)
        except ValueError:  # week 0, or week 53 in a year that has 52 ISO weeks
            return _BAD
        return Period("W", monday, monday + dt.timedelta(days=6), f"{year:04d}-W{n:02d}", None)
    if g["day"] is not None:
        try:
            day = dt.date(year, int(g["dmonth"]), int(g["day"]))
        except ValueError:
            return _BAD
        return Period("D", day, day, day.isoformat(), None)
    return Period("A", dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year:04d}", None)


@functools.lru_cache(maxsize=65536)
def parse_period(value: str | int | None) -> Period:
    """One SDMX time period -> Period(freq, start, end, label, reason); see the module docstring."""
    if value is None:
        return _ABSENT
    text = str(value).strip().upper()
    if not text:
        return _ABSENT
    return _parse(text)


def parse_period_array(values: ArrayLike) -> PeriodColumns:
    """A string or dictionary column of periods -> PeriodColumns (distinct values once, then gathers)."""
    rows = CODEBOOK.rows(values)
    return PeriodColumns(freq=rows.strings("freq"), start=rows.plain("start"), end=rows.plain("end"),
                         label=rows.strings("label"), reason=rows.strings("reason"))


CODEBOOK = Codebook(parse_period, strings=("freq", "label", "reason"),
                    plain={"start": pa.date32(), "end": pa.date32()})

"""SDMX time periods -> frequency, first day, last day (inclusive) and one normalized label.

| freq | accepted (any case; the hyphen is optional before A/S/Q/M/W) | normalized label | start .. end (inclusive) |
|------|------------------------------------------|------------|--------------------------------------|
| A    | `2024`, `2024-A1`                         | `2024`       | 2024-01-01 .. 2024-12-31             |
| S    | `2024-S1`, `2024S2`                       | `2024-S1`    | 2024-01-01 .. 2024-06-30 (S2: Jul-Dec) |
| Q    | `2024-Q1`, `2024Q1`                       | `2024-Q1`    | 2024-01-01 .. 2024-03-31             |
| M    | `2024-03`, `2024-M03`, `2024M3`           | `2024-03`    | 2024-03-01 .. 2024-03-31             |
| W    | `2024-W05`, `2024W5`                      | `2024-W05`   | ISO week: Monday 2024-01-29 .. Sunday 2024-02-04 |
| D    | `2024-03-15`                              | `2024-03-15` | 2024-03-15 .. 2024-03-15             |

Normalized labels: the ISO 8601 forms where ISO has one (year, month `YYYY-MM`, day, week `YYYY-Www`)
and the SDMX reporting-period forms otherwise (`YYYY-Sn`, `YYYY-Qn`), so each period has exactly one
label and labels of one frequency sort chronologically. Monthly is `2024-03`, not `2024-M03`: it is both
ISO 8601 and what SDMX-ML 2.1 data messages carry for monthly periods.

Years are four digits. Anything else (`2024-Q5`, `2024-13`, `2024-W53` in a year without an ISO week
53, `2024-02-30`, times of day, `abc`) gives nulls with reason "bad-period"; absent input (null or blank)
gives nulls with no reason.

Scalar: `parse_period(value) -> Period`. Vectorized: `parse_period_array(values) -> PeriodColumns`
(freq, start date32, end date32 inclusive, label, reason): each distinct value parsed once, then gathered.
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

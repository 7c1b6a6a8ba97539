"""Instruments compendium: current version, status, key dates, adopters, history order."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from consumers.derive.compendium import (COMPENDIUM_COLUMNS, HISTORY_COLUMNS, instrument_history,
                                                instruments_compendium)
from ioxhub.errors import IoxhubError


def _update(iid, action, version, day, produced, *, members=(), title=None, themes=("trade",), binding=False,
            event=None, org="WCO"):
    return {"instrument_id": iid, "org": org, "issuing_org": org, "partner_orgs": [], "title": title or f"{iid} v{version}",
            "instrument_type": "STANDARD", "binding": binding, "action": action, "version": version,
            "effective_date": dt.date.fromisoformat(day), "member_countries": list(members), "themes": list(themes),
            "related_indicators": [f"{org}.X"], "url": None,
            "produced_at": pd.Timestamp(produced, tz="UTC"), "event_id": event or f"{iid}-{action}-{version}-{day}-{produced}"}


@pytest.fixture()
def versions() -> pd.DataFrame:
    rows = [
        # A: adopted v1, in force, revised v2; a member adopts v1 *after* the revision (must not become current).
        _update("A", "ADOPTED", "1", "2018-01-10", "2024-01-01"),
        _update("A", "ENTERED_INTO_FORCE", "1", "2019-05-01", "2024-01-01", binding=True),
        _update("A", "ADOPTED_BY_MEMBER", "1", "2019-06-01", "2024-01-01", members=("FRA",)),
        _update("A", "REVISED", "2", "2021-03-01", "2024-01-01", title="A revised", themes=("trade", "health"), binding=True),
        _update("A", "ADOPTED_BY_MEMBER", "1", "2022-02-01", "2024-01-01", members=("DEU",)),
        # same effective date, later production wins
        _update("A", "REVISED", "2.1", "2021-03-01", "2024-02-01", title="A revised again", binding=True,
                themes=("trade", "health", "security")),
        # B: adopted then withdrawn (withdrawal row carries a poorer title)
        _update("B", "ADOPTED", "1", "2017-01-01", "2024-01-01", title="B full title"),
        _update("B", "WITHDRAWN", "1", "2023-06-30", "2024-01-01", title="B"),
        # C: only known from a member adoption
        _update("C", "ADOPTED_BY_MEMBER", "3", "2020-01-01", "2024-01-01", members=("ITA",)),
    ]
    rows.append(dict(rows[0]))        # a repeated event counts once
    return pd.DataFrame(rows)


@pytest.fixture()
def adoptions() -> pd.DataFrame:
    return pd.DataFrame({"instrument_id": ["A", "A", "A", "C", "Z"], "country": ["DEU", "FRA", "FRA", "ITA", "USA"],
                         "adoption_date": [dt.date(2022, 2, 1), dt.date(2019, 6, 1), dt.date(2020, 1, 1),
                                           dt.date(2020, 1, 1), dt.date(2020, 1, 1)],
                         "version": ["1", "1", "1", "3", "1"]})


def test_current_version_status_and_dates(versions, adoptions):
    comp = instruments_compendium(versions, adoptions)
    assert list(comp.columns) == COMPENDIUM_COLUMNS
    assert comp["instrument_id"].tolist() == ["A", "B", "C"]          # orphan adoption Z left out
    a, b, c = (comp.iloc[i] for i in range(3))
    assert (a.current_version, a.current_action, a.status) == ("2.1", "REVISED", "active")
    assert a.title == "A revised again" and a.binding and a.legal_force == "binding"
    assert a.themes == ["trade", "health", "security"]
    assert a.adopted_date == dt.date(2018, 1, 10) and a.entered_into_force_date == dt.date(2019, 5, 1)
    assert a.withdrawn_date is None
    assert a.n_updates == 6 and a.n_versions == 3
    assert (b.status, b.current_action, b.withdrawn_date) == ("withdrawn", "WITHDRAWN", dt.date(2023, 6, 30))
    assert b.title == "B full title" and b.legal_force == "soft"
    assert (c.current_version, c.status, c.n_versions) == ("3", "active", 0)


def test_adopting_members_in_date_order(versions, adoptions):
    comp = instruments_compendium(versions, adoptions).set_index("instrument_id")
    assert comp.loc["A", "n_adopting_members"] == 2
    assert comp.loc["A", "adopting_members"] == ["FRA", "DEU"]              # by date, first adoption per country
    assert comp.loc["A", "adoptions"][0] == {"country": "FRA", "adoption_date": dt.date(2019, 6, 1), "version": "1"}
    assert comp.loc["A", "first_member_adoption"] == dt.date(2019, 6, 1)
    assert comp.loc["A", "last_member_adoption"] == dt.date(2022, 2, 1)
    assert comp.loc["B", "n_adopting_members"] == 0 and comp.loc["B", "adopting_members"] == []


def test_history_order_and_current_flag(versions):
    hist = instrument_history(versions)
    assert list(hist.columns) == HISTORY_COLUMNS
    a = hist[hist.instrument_id == "A"]
    assert a["seq"].tolist() == [1, 2, 3, 4, 5, 6]
    assert a["version"].tolist() == ["1", "1", "1", "2", "2.1", "1"]
    assert a["is_current"].tolist() == [False, False, False, False, True, False]
    assert hist.groupby("instrument_id")["is_current"].sum().tolist() == [1, 1, 1]


def test_deterministic_and_arrow_input(versions, adoptions):
    shuffled = versions.sample(frac=1.0, random_state=3)
    expect = instruments_compendium(versions, adoptions)
    got = instruments_compendium(pa.Table.from_pandas(shuffled, preserve_index=False), adoptions.iloc[::-1])
    pd.testing.assert_frame_equal(expect, got)


def test_missing_column_is_named(versions, adoptions):
    with pytest.raises(IoxhubError, match="instrument_versions: missing column.*effective_date"):
        instruments_compendium(versions.drop(columns=["effective_date"]), adoptions)

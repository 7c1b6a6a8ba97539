"""The instruments compendium: every instrument of every IO, its current version, history and adopters.

`instruments_compendium(instrument_versions, adoptions)`: one row per instrument (`COMPENDIUM_COLUMNS`),
sorted by instrument_id. `instrument_history(instrument_versions)`: every update, in order. The rules
(ordering of updates, current version, status, adopters): docs/evidence.md.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from consumers.derive.frames import TableLike, frame

log = logging.getLogger(__name__)

VERSION_COLUMNS = ("instrument_id", "org", "issuing_org", "partner_orgs", "title", "instrument_type", "binding",
                   "action", "version", "effective_date", "member_countries", "themes", "related_indicators",
                   "url", "produced_at", "event_id")
ADOPTION_COLUMNS = ("instrument_id", "country", "adoption_date", "version")

COMPENDIUM_COLUMNS = [
    "instrument_id", "org", "issuing_org", "partner_orgs", "title", "instrument_type", "binding", "legal_force",
    "status", "current_version", "current_action", "current_effective_date", "adopted_date",
    "entered_into_force_date", "withdrawn_date", "themes", "related_indicators", "url", "n_updates",
    "n_versions", "n_adopting_members", "adopting_members", "adoptions", "first_member_adoption",
    "last_member_adoption", "last_produced_at",
]
HISTORY_COLUMNS = ["instrument_id", "seq", "effective_date", "action", "version", "org", "title", "binding",
                   "member_countries", "n_member_countries", "produced_at", "event_id", "is_current"]
DESCRIPTIVE = ["org", "issuing_org", "partner_orgs", "title", "instrument_type", "binding", "themes",
               "related_indicators", "url"]


def _as_list(v) -> list:
    return [] if v is None or (isinstance(v, float) and np.isnan(v)) else [str(x) for x in v]


def _ordered_versions(instrument_versions: TableLike) -> pd.DataFrame:
    df = frame(instrument_versions, VERSION_COLUMNS, "instrument_versions")
    df["effective_date"] = pd.to_datetime(df["effective_date"]).dt.date
    df["produced_at"] = pd.to_datetime(df["produced_at"], utc=True)
    for col in ("partner_orgs", "member_countries", "themes", "related_indicators"):
        df[col] = df[col].map(_as_list)
    df = df.drop_duplicates("event_id", keep="last")
    df = df.sort_values(["instrument_id", "effective_date", "produced_at", "event_id"], kind="stable")
    return df.reset_index(drop=True)


def _current_rows(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Index (into df) of each instrument's current update and of its descriptive update."""
    own = df["action"] != "ADOPTED_BY_MEMBER"
    last_any = df.groupby("instrument_id", sort=True).tail(1).set_index("instrument_id")["_row"]
    last_own = df[own].groupby("instrument_id", sort=True).tail(1).set_index("instrument_id")["_row"]
    current = last_own.reindex(last_any.index).fillna(last_any).astype(int)
    describing = df[own & (df["action"] != "WITHDRAWN")].groupby("instrument_id").tail(1) \
        .set_index("instrument_id")["_row"].reindex(current.index).fillna(current).astype(int)
    return current, describing


def instrument_history(instrument_versions: TableLike) -> pd.DataFrame:
    """Every update of every instrument in order (seq 1..n per instrument), flagging the current one."""
    df = _ordered_versions(instrument_versions)
    df["_row"] = np.arange(len(df))
    current, _ = _current_rows(df)
    df["seq"] = df.groupby("instrument_id").cumcount() + 1
    df["n_member_countries"] = df["member_countries"].map(len)
    df["is_current"] = df["_row"].isin(current.to_numpy())
    return df[HISTORY_COLUMNS].reset_index(drop=True)


def _first_date(df: pd.DataFrame, action: str) -> pd.Series:
    return df[df["action"] == action].groupby("instrument_id")["effective_date"].min()


def _adoption_lists(adoptions: TableLike) -> pd.DataFrame:
    ad = frame(adoptions, ADOPTION_COLUMNS, "adoptions")
    ad["adoption_date"] = pd.to_datetime(ad["adoption_date"]).dt.date
    ad = ad.sort_values(["instrument_id", "adoption_date", "country"], kind="stable") \
        .drop_duplicates(["instrument_id", "country"], keep="first")
    rows = []
    for iid, g in ad.groupby("instrument_id", sort=True):
        rows.append({
            "instrument_id": iid, "n_adopting_members": len(g), "adopting_members": g["country"].astype(str).tolist(),
            "adoptions": [{"country": str(c), "adoption_date": d, "version": None if pd.isna(v) else str(v)}
                          for c, d, v in zip(g["country"], g["adoption_date"], g["version"])],
            "first_member_adoption": g["adoption_date"].iloc[0], "last_member_adoption": g["adoption_date"].max(),
        })
    return pd.DataFrame(rows, columns=["instrument_id", "n_adopting_members", "adopting_members", "adoptions",
                                       "first_member_adoption", "last_member_adoption"]).set_index("instrument_id")


def instruments_compendium(instrument_versions: TableLike, adoptions: TableLike) -> pd.DataFrame:
    """One row per instrument: current version, status, key dates, legal force, themes and adopters."""
    df = _ordered_versions(instrument_versions)
    df["_row"] = np.arange(len(df))
    current, describing = _current_rows(df)
    out = df.loc[describing.to_numpy(), DESCRIPTIVE].set_index(describing.index)
    cur = df.loc[current.to_numpy()].set_index(current.index)
    out["current_version"] = cur["version"].astype(str)
    out["current_action"] = cur["action"].astype(str)
    out["current_effective_date"] = cur["effective_date"]
    out["status"] = np.where(cur["action"] == "WITHDRAWN", "withdrawn", "active")
    out["legal_force"] = np.where(out["binding"].astype(bool), "binding", "soft")
    out["adopted_date"] = _first_date(df, "ADOPTED")
    out["entered_into_force_date"] = _first_date(df, "ENTERED_INTO_FORCE")
    out["withdrawn_date"] = df[df["action"] == "WITHDRAWN"].groupby("instrument_id")["effective_date"].max()
    out["n_updates"] = df.groupby("instrument_id").size()
    out["n_versions"] = df[df["action"] != "ADOPTED_BY_MEMBER"].groupby("instrument_id")["version"].nunique() \
        .reindex(out.index).fillna(0).astype(int)
    out["last_produced_at"] = df.groupby("instrument_id")["produced_at"].max()

    lists = _adoption_lists(adoptions)
    orphans = sorted(set(lists.index) - set(out.index))
    if orphans:
        log.warning("compendium: adoptions of instruments without any update are left out: %s", orphans)
    out = out.join(lists, how="left")
    out["n_adopting_members"] = out["n_adopting_members"].fillna(0).astype(int)
    for col in ("adopting_members", "adoptions"):
        out[col] = out[col].map(lambda v: v if isinstance(v, list) else [])
    for col in ("adopted_date", "entered_into_force_date", "withdrawn_date", "first_member_adoption",
                "last_member_adoption"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    out.index.name = "instrument_id"
    return out.reset_index().sort_values("instrument_id", kind="stable")[COMPENDIUM_COLUMNS].reset_index(drop=True)

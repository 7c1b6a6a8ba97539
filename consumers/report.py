"""The impact report of one instrument: a self-contained HTML page, or a single PNG figure.

`write_report(instrument_id, panel, impact, adoptions, out_path)`: per related indicator, the yearly trend
of adopters and non-adopters and the event study; in HTML also the DiD table and the adopters. Figures are
matplotlib (Agg canvas, no pyplot state), embedded as base64 PNG.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ioxhub.errors import IoxhubError

from consumers.derive.frames import TableLike, frame
from consumers.derive.impact import Impact

ADOPTER, OTHER = "#c0392b", "#2c3e50"


def _trend(ax, rows: pd.DataFrame, adopters: dict, log_scale: bool, indicator: str, unit: str) -> None:
    """Mean by year of adopters and of the other countries (geometric mean on the log scale)."""
    is_adopter = rows["ref_area"].isin(list(adopters))
    values = np.log(rows["value"]) if log_scale else rows["value"]
    for mask, label, color in ((is_adopter, f"adopters ({len(set(rows.loc[is_adopter, 'ref_area']))})", ADOPTER),
                               (~is_adopter, f"non-adopters ({len(set(rows.loc[~is_adopter, 'ref_area']))})", OTHER)):
        if mask.any():
            by_year = values[mask].groupby(rows.loc[mask, "year"]).mean()
            ax.plot(by_year.index, np.exp(by_year) if log_scale else by_year, marker="o", ms=3, color=color,
                    label=label)
    years = pd.Series([d.year for d in adopters.values()]).value_counts().sort_index()
    for year, n in years.items():
        ax.axvline(year, color=ADOPTER, alpha=0.25, lw=1)
        ax.annotate(f"+{n}", (year, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom",
                    fontsize=7, color=ADOPTER)
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(f"{indicator}: {'geometric ' if log_scale else ''}mean by year", fontsize=9, pad=12)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(which="both", labelsize=7)   # "both": a log axis labels some minor ticks too
    ax.legend(fontsize=7, frameon=False)


def _event(ax, es: pd.DataFrame, did: pd.Series) -> None:
    es = es.sort_values("rel_year")
    pct = did["scale"] == "log"
    k = 100.0 if pct else 1.0
    est = es["estimate"].to_numpy() * k
    lo = (es["estimate"] - es["ci_low"]).to_numpy() * k
    hi = (es["ci_high"] - es["estimate"]).to_numpy() * k
    ax.errorbar(es["rel_year"], est, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="o", ms=4, capsize=3,
                color=ADOPTER)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(-0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("years relative to adoption (reference -1)", fontsize=8)
    ax.set_ylabel("effect (log points x 100)" if pct else f"effect ({did['unit']})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"event study; DiD {format_effect(did)}", fontsize=9)


def format_effect(d: pd.Series) -> str:
    if d["estimate"] is None or (isinstance(d["estimate"], float) and math.isnan(d["estimate"])):
        return "n/a"
    if d["scale"] == "log":
        return f"{d['pct_estimate']:+.1f} % [{d['pct_ci_low']:+.1f}, {d['pct_ci_high']:+.1f}]"
    return f"{d['estimate']:+.3g} {d['unit']} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}]"


def _figure(instrument_id: str, panel: pd.DataFrame, impact: Impact, adopters: dict, title: str) -> Figure:
    did = impact.did[(impact.did["instrument_id"] == instrument_id) & impact.did["primary"]]
    rows = max(len(did), 1)
    fig = Figure(figsize=(11, 3.4 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=11)
    axes = fig.subplots(rows, 2, squeeze=False)
    for (ax_trend, ax_event), (_, d) in zip(axes, did.iterrows()):
        ind = d["indicator"]
        data = panel[panel["indicator"] == ind]
        if data.empty:
            for ax in (ax_trend, ax_event):
                ax.text(0.5, 0.5, f"{ind}: no data in the panel", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
            continue
        _trend(ax_trend, data, adopters, d["scale"] == "log", ind, d["unit"] or "")
        es = impact.event_study[(impact.event_study["instrument_id"] == instrument_id)
                                & (impact.event_study["indicator"] == ind) & impact.event_study["primary"]]
        no_estimate = format_effect(d) == "n/a"
        if no_estimate or es["estimate"].notna().sum() < 2:   # the reference year alone shows nothing
            reason = d["note"] if no_estimate and isinstance(d["note"], str) and d["note"] else "too little data"
            ax_event.text(0.5, 0.5, f"no event study ({reason})", ha="center", va="center",
                          transform=ax_event.transAxes)
            ax_event.set_axis_off()
        else:
            _event(ax_event, es, d)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}.note{color:#666;font-size:13px}"""


# The impact table as analysts read it: column of `Impact.did` -> heading (the Parquet dataset keeps the
# machine names; see consumers/derive/impact.py for their definitions).
_DID_COLUMNS = {
    "indicator": "Indicator", "scale": "Scale", "primary": "Primary", "estimate": "Estimate",
    "se": "Std. error", "ci_low": "95% CI low", "ci_high": "95% CI high", "p_value": "p-value",
    "pct_estimate": "Effect (%)", "pct_ci_low": "Effect 95% CI low (%)", "pct_ci_high": "Effect 95% CI high (%)",
    "n_treated_countries": "Adopting countries", "n_control_countries": "Control countries",
    "n_cohorts": "Adoption cohorts", "n_obs": "Observations", "note": "Note",
}


def _html(instrument_id: str, title: str, png: bytes, impact: Impact, adopters: dict) -> str:
    did = impact.did[impact.did["instrument_id"] == instrument_id]
    first = did.iloc[0] if len(did) else None
    windows = (f"pre window: {first['pre_years']} years before the adoption year; post window: the adoption year "
               f"and {first['post_years'] - 1} after; controls: "
               f"{'not-yet-adopted and never-adopting' if first['control'] == 'not_yet' else 'never-adopting'} "
               "countries") if first is not None else ""
    adopt = pd.DataFrame(sorted(adopters.items(), key=lambda kv: (kv[1], kv[0])), columns=["Country", "Adoption date"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Stacked difference-in-differences by adoption cohort against clean controls; {html.escape(windows)}.
Estimates on the log scale read as % (100 (exp(b) - 1)). 95 % intervals use Welch-Satterthwaite t.
In the trend charts the vertical lines mark the adoption years (+n: members adopting that year).</p>
<img alt="trends and event studies" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Impact (difference-in-differences)</h2>
{_table(did[list(_DID_COLUMNS)].rename(columns=_DID_COLUMNS))}
<h2>Adopting members ({len(adopt)})</h2>
{_table(adopt)}
</body></html>"""


def write_report(instrument_id: str, panel: TableLike, impact: Impact, adoptions: TableLike, out_path: str | Path,
                 *, title: str | None = None) -> Path:
    """Write the instrument's report to `out_path` (.html / .htm: page with tables; .png: the figure)."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".png"):
        raise IoxhubError(f"report: {out}: the output must end in .html or .png")
    if not (impact.did["instrument_id"] == instrument_id).any():
        known = ", ".join(sorted(impact.did["instrument_id"].unique())) or "none"
        raise IoxhubError(f"report: no impact rows for instrument {instrument_id!r} (known: {known})")
    p = frame(panel, ["indicator", "ref_area", "year", "value"], "panel")
    ad = frame(adoptions, ["instrument_id", "country", "adoption_date"], "adoptions")
    ad = ad[ad["instrument_id"] == instrument_id]
    adopters = {str(c): pd.Timestamp(d).date() for c, d in
                ad.sort_values("adoption_date").drop_duplicates("country")[["country", "adoption_date"]].itertuples(index=False)}
    title = title or f"Impact of {instrument_id}"
    png = _png(_figure(instrument_id, p[p["value"].notna()], impact, adopters, title))
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        out.write_bytes(png)
    else:
        out.write_text(_html(instrument_id, title, png, impact, adopters), encoding="utf-8")
    return out

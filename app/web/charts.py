"""The portal's charts as inline SVG, built by hand: line chart, event study with its confidence band,
coverage heatmap, adopters timeline.

Each function returns markup (`markupsafe.Markup`) of one `<svg role="img">` with a `<title>` and a
`<desc>` (the text alternative; the pages add the numbers as a table). Why not matplotlib's SVG backend
(the report's PNGs use it): it writes glyphs as paths (text neither selectable nor read by screen
readers); an event-study figure measured 20 KB and ~100 ms there, 3 KB and 0.4 ms here (docs/portal.md).
Colours: the Okabe-Ito palette (distinguishable with colour blindness), text and axes dark on white.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

from markupsafe import Markup

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
INK, GRID, BAND = "#1a1a1a", "#d0d0d0", "#0072B2"
W, H = 760, 340
LEFT, RIGHT, TOP, BOTTOM = 78, 150, 34, 46


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering lo..hi (1, 2, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi == lo:
        hi, lo = hi + (abs(hi) or 1) * 0.5, lo - (abs(lo) or 1) * 0.5
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 0.5:
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g}G"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    return f"{v:.4g}"


class _Frame:
    """Scales and axes of a plot area."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], *, x_integer: bool, right: int = RIGHT):
        self.right = right
        xt = nice_ticks(min(xs), max(xs)) if xs else [0.0, 1.0]
        if x_integer:
            xt = sorted({int(round(t)) for t in xt if min(xs) - 0.5 <= t <= max(xs) + 0.5} or {int(min(xs))})
        self.xlo, self.xhi = min([*xs, *xt]), max([*xs, *xt])
        if self.xhi == self.xlo:
            self.xlo, self.xhi = self.xlo - 1, self.xhi + 1
        self.yt = nice_ticks(min(ys), max(ys)) if ys else [0.0, 1.0]
        self.ylo, self.yhi = min([*ys, *self.yt]), max([*ys, *self.yt])
        if self.yhi == self.ylo:
            self.ylo, self.yhi = self.ylo - 1, self.yhi + 1
        self.xt = xt

    def x(self, v: float) -> float:
        return LEFT + (v - self.xlo) / (self.xhi - self.xlo) * (W - LEFT - self.right)

    def y(self, v: float) -> float:
        return H - BOTTOM - (v - self.ylo) / (self.yhi - self.ylo) * (H - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        out = []
        for t in self.yt:
            out.append(f'<line x1="{LEFT}" x2="{W - self.right}" y1="{self.y(t):.1f}" y2="{self.y(t):.1f}" '
                       f'stroke="{GRID}" stroke-width="1"/>'
                       f'<text x="{LEFT - 6}" y="{self.y(t) + 4:.1f}" text-anchor="end">{escape(fmt(t))}</text>')
        for t in self.xt:
            out.append(f'<text x="{self.x(t):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{escape(fmt(t))}</text>')
        out.append(f'<line x1="{LEFT}" x2="{W - self.right}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" stroke="{INK}"/>'
                   f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="{INK}"/>'
                   f'<text x="{(LEFT + W - self.right) / 2:.0f}" y="{H - 8}" text-anchor="middle">{escape(x_label)}</text>'
                   f'<text transform="translate(16 {(TOP + H - BOTTOM) / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
        return out


def _svg(chart_id: str, title: str, desc: str, body: list[str], height: int = H) -> Markup:
    return Markup(
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {W} {height}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{INK}">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title><desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="600">{escape(title)}</text>'
        + "".join(body) + "</svg>")


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def line_chart(chart_id: str, lines: dict[str, list[tuple[float, float]]], title: str, x_label: str,
               y_label: str) -> Markup:
    """One line per label (at most the palette's length), with a legend on the right."""
    lines = dict(list(lines.items())[:len(PALETTE)])
    xs = [x for pts in lines.values() for x, _ in pts]
    ys = [y for pts in lines.values() for _, y in pts]
    if not xs:
        return _svg(chart_id, title, "No data for this selection.",
                    [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">No data for this selection.</text>'])
    f = _Frame(xs, ys, x_integer=True)
    body = f.axes(x_label, y_label)
    for i, (label, pts) in enumerate(lines.items()):
        colour = PALETTE[i % len(PALETTE)]
        dash = "" if i < 4 else ' stroke-dasharray="6 3"'
        body.append(f'<path d="{_path([(f.x(x), f.y(y)) for x, y in pts])}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash}><title>{escape(label)}</title></path>')
        ly = TOP + 16 + i * 18
        body.append(f'<line x1="{W - RIGHT + 12}" x2="{W - RIGHT + 36}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                    f'stroke-width="3"{dash}/><text x="{W - RIGHT + 42}" y="{ly}">{escape(label)}</text>')
    desc = "; ".join(f"{label}: {len(pts)} points from {fmt(pts[0][0])} ({fmt(pts[0][1])}) to "
                     f"{fmt(pts[-1][0])} ({fmt(pts[-1][1])})" for label, pts in lines.items())
    return _svg(chart_id, title, f"Line chart of {y_label} by {x_label}. {desc}.", body)


def event_study_chart(chart_id: str, rows: list[dict], title: str, y_label: str, scale: float = 1.0) -> Markup:
    """Estimates by year relative to adoption, the 95 % interval as a shaded band, 0 and adoption marked."""
    pts = [(float(r["rel_year"]), r["estimate"] * scale,
            (r["estimate"] if r.get("reference") else r["ci_low"]) * scale,    # the reference year: 0 by definition
            (r["estimate"] if r.get("reference") else r["ci_high"]) * scale) for r in rows
           if r["estimate"] is not None and not math.isnan(r["estimate"])]
    banded = [p for p in pts if not (math.isnan(p[2]) or math.isnan(p[3]))]
    if not pts:
        return _svg(chart_id, title, "No event-study estimates.",
                    [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">No event-study estimates.</text>'])
    ys = [v for p in pts for v in p[1:] if not math.isnan(v)] + [0.0]
    f = _Frame([p[0] for p in pts], ys, x_integer=True, right=30)
    body = f.axes("years relative to adoption (reference -1)", y_label)
    if banded:
        upper = [(f.x(x), f.y(hi)) for x, _, _, hi in banded]
        lower = [(f.x(x), f.y(lo)) for x, _, lo, _ in reversed(banded)]
        body.append(f'<path class="band" d="{_path(upper + lower)} Z" fill="{BAND}" fill-opacity="0.18" '
                    f'stroke="none"><title>95 % confidence band</title></path>')
    body.append(f'<line x1="{LEFT}" x2="{W - 30}" y1="{f.y(0):.1f}" y2="{f.y(0):.1f}" stroke="{INK}" stroke-width="1"/>')
    body.append(f'<line x1="{f.x(-0.5):.1f}" x2="{f.x(-0.5):.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="{INK}" '
                f'stroke-dasharray="4 4"/><text x="{f.x(-0.5) + 4:.1f}" y="{TOP + 12}">adoption</text>')
    body.append(f'<path class="estimate" d="{_path([(f.x(x), f.y(e)) for x, e, _, _ in pts])}" fill="none" '
                f'stroke="{BAND}" stroke-width="2"/>')
    for x, e, lo, hi in pts:
        interval = "" if math.isnan(lo) else f", 95 % interval {fmt(lo)} to {fmt(hi)}"
        body.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(e):.1f}" r="4" fill="{BAND}">'
                    f'<title>year {int(x)}: {escape(fmt(e))}{escape(interval)}</title></circle>')
    post = [p for p in pts if p[0] >= 0]
    desc = (f"Event study: {len(pts)} estimates from year {int(pts[0][0])} to {int(pts[-1][0])} relative to adoption"
            + (f"; after adoption from {fmt(post[0][1])} (year {int(post[0][0])}) to {fmt(post[-1][1])} "
               f"(year {int(post[-1][0])})" if post else "") + ". The shaded band is the 95 % interval.")
    return _svg(chart_id, title, desc, body)


def heatmap(chart_id: str, countries: list[str], years: list[int], counts: dict[tuple[str, int], int],
            title: str) -> Markup:
    """Countries (rows) x years (columns), each cell shaded by its number of observations."""
    if not countries or not years:
        return _svg(chart_id, title, "No coverage to show.", ['<text x="20" y="60">No country or year columns.</text>'], 80)
    cell_w = max(12, min(40, (W - 60) // len(years)))
    cell_h = 14
    height = TOP + 24 + cell_h * len(countries) + 10
    top = max(counts.values()) or 1
    body = []
    for j, year in enumerate(years):
        if len(years) <= 20 or j % max(1, len(years) // 10) == 0:
            body.append(f'<text x="{50 + j * cell_w + cell_w / 2:.0f}" y="{TOP + 14}" text-anchor="middle" '
                        f'font-size="10">{year}</text>')
    for i, country in enumerate(countries):
        y = TOP + 20 + i * cell_h
        body.append(f'<text x="44" y="{y + 11}" text-anchor="end" font-size="10">{escape(country)}</text>')
        for j, year in enumerate(years):
            n = counts.get((country, year), 0)
            shade = "#f2f2f2" if n == 0 else f"rgba(0,114,178,{0.25 + 0.75 * n / top:.2f})"
            body.append(f'<rect x="{50 + j * cell_w}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" fill="{shade}">'
                        f'<title>{escape(country)} {year}: {n} observations</title></rect>')
    filled = sum(1 for c in countries for y in years if counts.get((c, y)))
    desc = (f"Coverage of {len(countries)} countries over {years[0]}-{years[-1]}: {filled} of "
            f"{len(countries) * len(years)} country-years have observations (darker: more observations, at most {top}).")
    return _svg(chart_id, title, desc, body, height)


def adopters_timeline(chart_id: str, adoptions: list[dict], title: str) -> Markup:
    """Cumulative number of adopting members over time, each adoption year's members named."""
    by_year: dict[int, list[str]] = {}
    for a in adoptions:
        by_year.setdefault(int(str(a["adoption_date"])[:4]), []).append(str(a["country"]))
    if not by_year:
        return _svg(chart_id, title, "No member has adopted it yet.",
                    ['<text x="20" y="60">No member adoptions recorded.</text>'], 80)
    years = sorted(by_year)
    total, pts = 0, []
    for y in years:
        total += len(by_year[y])
        pts.append((float(y), float(total)))
    f = _Frame([years[0] - 1.0, *map(float, years), years[-1] + 1.0], [0.0, float(total)], x_integer=True, right=30)
    body = f.axes("year", "adopting members (cumulative)")
    step = [(f.x(years[0] - 1), f.y(0))]
    prev = 0.0
    for x, n in pts:
        step += [(f.x(x), f.y(prev)), (f.x(x), f.y(n))]
        prev = n
    step.append((f.x(years[-1] + 1), f.y(prev)))
    body.append(f'<path d="{_path(step)}" fill="none" stroke="{PALETTE[1]}" stroke-width="2.5"/>')
    for x, n in pts:
        names = ", ".join(by_year[int(x)])
        body.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(n):.1f}" r="5" fill="{PALETTE[1]}">'
                    f'<title>{int(x)}: +{len(by_year[int(x)])} ({escape(names)})</title></circle>'
                    f'<text x="{f.x(x) + 6:.1f}" y="{f.y(n) + 16:.1f}" font-size="10">{escape(names[:40])}</text>')
    desc = "Adoptions by year: " + "; ".join(f"{y}: {', '.join(by_year[y])}" for y in years) + f". {total} in all."
    return _svg(chart_id, title, desc, body)

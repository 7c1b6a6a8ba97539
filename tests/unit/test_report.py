"""Instrument report: self-contained HTML with the figure and tables, or one PNG; clear errors."""
from __future__ import annotations

import base64
import math
import re

import matplotlib.image
import pandas as pd
import pytest
from derive_dgp import make_panel

from consumers.derive.impact import instrument_impact
from consumers.report import write_report
from ioxhub.errors import IoxhubError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def inputs():
    h, ad = make_panel(0, indicator="X.H", unit="HOURS", effect=-3.0, scale="level", cohorts={2013: 3, 2016: 4})
    n, _ = make_panel(1, indicator="X.N", unit="NUMBER", effect=math.log(1.2), scale="log", cohorts={2013: 3, 2016: 4},
                      noise=0.05)
    panel = pd.concat([h, n], ignore_index=True)
    instruments = pd.DataFrame({"instrument_id": ["INS"], "related_indicators": [["X.H", "X.N", "X.GONE"]]})
    return panel, instrument_impact(panel, instruments, ad), ad


def test_html_is_self_contained(inputs, tmp_path):
    panel, impact, ad = inputs
    out = write_report("INS", panel, impact, ad, tmp_path / "sub" / "ins.html", title="Impact of <INS>")
    text = out.read_text(encoding="utf-8")
    assert "<h1>Impact of &lt;INS&gt;</h1>" in text                     # escaped
    assert not re.search(r'src="(?!data:)', text) and "<link" not in text and "<script" not in text
    [b64] = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    png = base64.b64decode(b64)
    assert png.startswith(PNG_MAGIC)
    d = impact.did[(impact.did.indicator == "X.H") & impact.did.primary].iloc[0]
    assert f"<td>{d.estimate:.4g}</td>" in text and "indicator not in the panel" in text
    assert text.count("<td>2013-03-01</td>") == 3 and "Adopting members (7)" in text
    assert "<th>Effect 95% CI low (%)</th>" in text and "<th>Adoption date</th>" in text   # headings, not column names
    assert "pct_ci_low" not in text


def test_png_is_one_figure_with_a_row_per_indicator(inputs, tmp_path):
    panel, impact, ad = inputs
    out = write_report("INS", panel, impact, ad, tmp_path / "ins.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    three = matplotlib.image.imread(out)
    only_h = instrument_impact(panel, pd.DataFrame({"instrument_id": ["INS"], "related_indicators": [["X.H"]]}), ad)
    one = matplotlib.image.imread(write_report("INS", panel, only_h, ad, tmp_path / "one.png"))
    assert three.shape[1] == one.shape[1] > 1000
    assert three.shape[0] > 2.5 * one.shape[0]                        # 3 indicator rows against 1


def test_errors_are_clear(inputs, tmp_path):
    panel, impact, ad = inputs
    with pytest.raises(IoxhubError, match=r"must end in \.html or \.png"):
        write_report("INS", panel, impact, ad, tmp_path / "ins.pdf")
    with pytest.raises(IoxhubError, match="no impact rows for instrument 'NOPE'.*INS"):
        write_report("NOPE", panel, impact, ad, tmp_path / "x.html")

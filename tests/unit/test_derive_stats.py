"""Student t p-values and quantiles (hand-written, scipy is not a dependency) against table values."""
from __future__ import annotations

import math

import pytest

from consumers.derive.stats import betainc, t_pvalue, t_quantile

# two-sided 5 % critical values of Student's t (any statistics table)
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 5: 2.5706, 10: 2.2281, 20: 2.0860, 30: 2.0423, 120: 1.9799}


@pytest.mark.parametrize("df,q", sorted(T975.items()))
def test_quantiles_match_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
    assert t_pvalue(q, df) == pytest.approx(0.05, abs=1e-5)


def test_pvalues_known_values_and_edges():
    assert t_pvalue(2.0, 1) == pytest.approx(1 - 2 * math.atan(2.0) / math.pi, rel=1e-10)   # Cauchy closed form
    assert t_pvalue(0.0, 7) == pytest.approx(1.0)
    assert t_pvalue(1.959964, 1e6) == pytest.approx(0.05, abs=1e-5)                      # -> normal
    assert t_pvalue(-3.0, 12.5) == t_pvalue(3.0, 12.5)
    assert math.isnan(t_pvalue(1.0, 0)) and math.isnan(t_quantile(0.975, math.nan))
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-4)                      # I_0.4(2, 3)

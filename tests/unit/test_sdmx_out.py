"""SDMX out (consumers/sdmx_out.py): the generated structure, code lists, keys and periods as filters, and the
messages read back by sdmx1's own reader."""
from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pytest
import sdmx

from consumers.access import Filter
from consumers.sdmx_out import (SdmxOutError, data_message, dataset_of_flow, flow_id, key_filters, period_filters,
                                structure_message, structure_of, to_sdmx_csv, to_sdmx_ml)

TABLE = pa.table({"indicator": ["WCO.SEIZURES", "WCO.SEIZURES", "WHO.X"], "ref_area": ["FRA", "DEU", None],
                  "freq": ["A", "A", "A"], "period": ["2015", "2016", "2015"],
                  "year": pa.array([2015, 2016, 2015], pa.int32()), "value": [1.5, None, 3.0],
                  "unit": ["t", "t", None], "org": ["WCO", "WCO", "WHO"]})


def test_structure_from_columns_and_values():
    st = structure_of("indicator_panel_annual", TABLE)
    assert (st.dimensions, st.time, st.measure) == (["freq", "indicator", "ref_area"], "period", "value")
    assert st.attributes == ["year", "unit", "org"] and st.flow == "INDICATOR_PANEL_ANNUAL"
    assert st.codes["indicator"] == {"WCO_SEIZURES": "WCO.SEIZURES", "WHO_X": "WHO.X"}
    assert st.codes["ref_area"] == {"DEU": "DEU", "FRA": "FRA", "_Z": ""}
    assert [d.id for d in st.dsd.dimensions] == ["FREQ", "INDICATOR", "REF_AREA", "TIME_PERIOD"]
    with pytest.raises(SdmxOutError, match="x: no measure column"):
        structure_of("x", pa.table({"ref_area": ["FRA"], "note": ["n"]}))


def test_flow_ids_map_back_to_dataset_names():
    names = ["indicator_panel_annual", "WCO.hazwaste_seizures", "instruments.adoptions"]
    assert [flow_id(n) for n in names] == ["INDICATOR_PANEL_ANNUAL", "WCO__HAZWASTE_SEIZURES", "INSTRUMENTS__ADOPTIONS"]
    assert all(dataset_of_flow(flow_id(n).lower(), names) == n for n in names)
    assert dataset_of_flow("NOPE", names) is None


def test_key_and_periods_become_pull_filters():
    st = structure_of("p", TABLE)
    assert key_filters(st, "") == [] and key_filters(st, "all") == []
    assert key_filters(st, "A.WCO_SEIZURES+WHO_X.") == [Filter("freq", "in", ("A",)),
                                                        Filter("indicator", "in", ("WCO.SEIZURES", "WHO.X"))]
    with pytest.raises(SdmxOutError, match=r"2 part\(s\), the structure of P has 3 dimension\(s\) \(FREQ.INDICATOR.REF_AREA\)"):
        key_filters(st, "A.FRA")
    with pytest.raises(SdmxOutError, match="no code 'ITA' for dimension REF_AREA"):
        key_filters(st, "..ITA")
    assert period_filters(st, "2015", "2016") == [Filter("period", ">=", ("2015",)), Filter("period", "<", ("2016~",))]
    assert "2016-Q4" < "2016~" and "2017" > "2016~"       # endPeriod=2016 keeps the quarters of 2016 only
    yearly = structure_of("y", TABLE.drop_columns(["period"]))
    assert period_filters(yearly, "2015-Q1", None) == [Filter("year", ">=", ("2015",))]
    with pytest.raises(SdmxOutError, match="period 'soon'"):
        period_filters(yearly, "soon", None)


def test_messages_read_back_with_sdmx1():
    st = structure_of("indicator_panel_annual", TABLE)
    structures = sdmx.read_sdmx(io.BytesIO(to_sdmx_ml(structure_message([st]))))
    assert "INDICATOR_PANEL_ANNUAL" in structures.dataflow and len(structures.codelist) == 3
    message = data_message(st, TABLE)
    series = sdmx.to_pandas(sdmx.read_sdmx(io.BytesIO(to_sdmx_ml(message)), structure=st.dsd))
    assert series.xs("FRA", level="REF_AREA").tolist() == [1.5] and len(series) == 3
    frame = pd.read_csv(io.StringIO(to_sdmx_csv(message)))
    assert list(frame.columns) == ["STRUCTURE", "STRUCTURE_ID", "ACTION", "FREQ", "INDICATOR", "REF_AREA",
                                   "TIME_PERIOD", "OBS_VALUE", "YEAR", "UNIT", "ORG"]
    assert frame.STRUCTURE_ID.unique().tolist() == ["IOXHUB:INDICATOR_PANEL_ANNUAL(1.0)"]
    assert frame.OBS_VALUE.isna().sum() == 1 and frame.UNIT.tolist()[:2] == ["t", "t"]

"""An SDMX-ML 2.1 *generic* data message writer (readable without the DSD, e.g. by `sdmx.read_sdmx`).

Hand-written because sdmx1 writes SDMX-ML only from a full information model (DSD, codelists, data
set objects): building that for ~8k observations costs far more than formatting the XML directly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence
from xml.sax.saxutils import quoteattr

_NS = ('xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
       'xmlns:generic="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic" '
       'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"')


def _values(tag: str, pairs: Iterable[tuple[str, str]], indent: str) -> str:
    inner = "".join(f'{indent}  <generic:Value id={quoteattr(k)} value={quoteattr(v)}/>\n' for k, v in pairs)
    return f"{indent}<generic:{tag}>\n{inner}{indent}</generic:{tag}>\n"


def write_generic(path: Path, *, message_id: str, sender: str, prepared: str, agency: str, dsd_id: str,
                  series: Sequence[tuple[dict[str, str], dict[str, str], Sequence[tuple[str, str, str | None]]]]) -> int:
    """Write a message; `series` = (key values, series attributes, [(period, value, obs_status|None)]).
    Returns the number of observations written."""
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.write(f"<message:GenericData {_NS}>\n")
        fh.write("  <message:Header>\n"
                 f"    <message:ID>{message_id}</message:ID>\n"
                 "    <message:Test>false</message:Test>\n"
                 f"    <message:Prepared>{prepared}</message:Prepared>\n"
                 f"    <message:Sender id={quoteattr(sender)}/>\n"
                 f'    <message:Structure structureID="{dsd_id}" dimensionAtObservation="TIME_PERIOD">\n'
                 "      <common:Structure>\n"
                 f'        <Ref agencyID={quoteattr(agency)} id={quoteattr(dsd_id)} version="1.0"/>\n'
                 "      </common:Structure>\n"
                 "    </message:Structure>\n"
                 "  </message:Header>\n")
        fh.write(f'  <message:DataSet structureRef="{dsd_id}" action="Information">\n')
        for key, attrs, observations in series:
            parts = ["    <generic:Series>\n", _values("SeriesKey", key.items(), "      ")]
            if attrs:
                parts.append(_values("Attributes", attrs.items(), "      "))
            for period, value, status in observations:
                parts.append("      <generic:Obs>\n"
                             f'        <generic:ObsDimension value="{period}"/>\n'
                             f'        <generic:ObsValue value="{value}"/>\n')
                if status:
                    parts.append(_values("Attributes", [("OBS_STATUS", status)], "        "))
                parts.append("      </generic:Obs>\n")
                n += 1
            parts.append("    </generic:Series>\n")
            fh.write("".join(parts))
        fh.write("  </message:DataSet>\n</message:GenericData>\n")
    return n

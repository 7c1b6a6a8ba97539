"""The policy timeline as the files each org publishes (`ioxhub publish policy --org ORG FILE`).

One YAML file per publishing org: a list of updates, except an org with a single update, whose file is
that one mapping (both forms must be accepted). Fields are those of schemas/policy_update/v1.avsc that
a publisher writes; event_id, org and produced_at are filled in by the producer.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from producers.samples.manifest import SampleFile
from producers.samples.timeline import INSTRUMENTS, policy_records


def write_policies(out: Path) -> list[SampleFile]:
    by_org: dict[str, list[dict]] = {}
    for instrument in INSTRUMENTS:
        by_org.setdefault(instrument.publisher, []).extend(policy_records(instrument))
    files = []
    for org, records in sorted(by_org.items()):
        rel = f"policies/{org.lower()}.policies.yaml"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = records[0] if len(records) == 1 else records
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
        ids = sorted({r["instrument_id"] for r in records})
        files.append(SampleFile(path=rel, kind="policy", org=org, format="yaml", rows=len(records), good=len(records),
                                description=f"{len(records)} policy update(s) of {', '.join(ids)}"
                                + (" (a single mapping, not a list)" if len(records) == 1 else "")))
    return files

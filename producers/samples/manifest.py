"""What `generate()` wrote: every file with its org, dataset, format, mapping and expected counts.

Counts reconcile exactly: ``rows == good + duplicates + len(bad)`` for every data file, where `rows` are
the data rows (CSV / SDMX-CSV: lines after the header; JSON Lines: lines; SDMX-ML: observations;
policy files: updates). Line numbers are 1-based lines of the file (a CSV header is line 1).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ioxhub.errors import IoxhubError

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str          # observation field (ref_area, period, value, commodity, unit, ...)
    column: str         # source column / key holding it
    reason: str         # unknown-country, unknown-hs-code, bad-period, bad-value, missing-field, missing-unit
    value: str | None   # the offending cell (None when the field is missing)
    stage: str          # where it must be caught: "publish" (producer validation) or "ingest" (harmonization)


@dataclass
class SampleFile:
    path: str                          # relative to the output directory, '/'-separated
    kind: str                          # "dataset" | "policy"
    org: str
    format: str                        # csv | jsonl | sdmx-csv | sdmx-ml | yaml
    description: str
    dataset_id: str | None = None
    mapping: str | None = None         # the column mapping file (producers.mapping format)
    indicators: list[str] = field(default_factory=list)
    rows: int = 0
    good: int = 0                      # distinct valid observations (what ingest keeps)
    duplicates: int = 0                # exact copies of good rows (ingest keeps one)
    duplicate_lines: list[int] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    missing_values: int = 0            # good rows whose value is empty (null, obs_status M)
    release: str | None = None         # "1", "2" for the releases of a revised dataset
    revision_of: str | None = None     # path of the release this one revises
    revised_values: int = 0            # observations whose value differs from that release


@dataclass
class SampleManifest:
    seed: int
    scale: float
    files: list[SampleFile]
    planted_effects: list[dict]
    out_dir: Path | None = None

    def file(self, path: str) -> SampleFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    def datasets(self) -> list[SampleFile]:
        return [f for f in self.files if f.kind == "dataset"]

    def policies(self) -> list[SampleFile]:
        return [f for f in self.files if f.kind == "policy"]

    def totals(self) -> dict[str, int]:
        data = self.datasets()
        return {"files": len(self.files), "rows": sum(f.rows for f in data), "good": sum(f.good for f in data),
                "duplicates": sum(f.duplicates for f in data), "bad": sum(len(f.bad) for f in data),
                "policy_updates": sum(f.rows for f in self.policies())}

    def to_dict(self) -> dict:
        return {"seed": self.seed, "scale": self.scale, "files": [asdict(f) for f in self.files],
                "planted_effects": self.planted_effects}

    def write(self, out_dir: Path) -> Path:
        path = out_dir / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, out_dir: str | Path) -> "SampleManifest":
        path = Path(out_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IoxhubError(f"{path} does not exist: run `ioxhub samples generate {out_dir}` first") from None
        except (OSError, ValueError) as exc:
            raise IoxhubError(f"{path} cannot be read: {exc}") from None
        files = [SampleFile(**{**f, "bad": [BadRow(**b) for b in f["bad"]]}) for f in data["files"]]
        return cls(data["seed"], data["scale"], files, data["planted_effects"], Path(out_dir))

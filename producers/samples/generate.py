"""`generate(out_dir, seed, scale)`: write every sample feed, the policy files and manifest.json."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ioxhub.errors import IoxhubError

from producers.samples.bulk import n_codes, wto_imports_bulk
from producers.samples.effects import PLANTED_EFFECTS
from producers.samples.feeds import icao_aircargo, imo_port_calls, upu_postal, wco_clearance, wco_hazwaste, who_shipments, wto_exports
from producers.samples.manifest import SampleManifest
from producers.samples.policies import write_policies

FEEDS = (wco_clearance, wco_hazwaste, who_shipments, icao_aircargo, wto_exports, upu_postal, imo_port_calls)


def generate(out_dir: str | Path, seed: int = 0, scale: float = 1.0,
             progress: Callable[[int, int], None] | None = None) -> SampleManifest:
    """Write the sample feeds into `out_dir` (created; existing sample files are overwritten).

    Same seed and scale -> byte-identical files. `scale` sizes the bulk WTO file only (see bulk.py);
    `progress(rows, total)` reports on it.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise IoxhubError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise IoxhubError(f"scale must be a positive number, got {scale!r}")
    n_codes(scale)   # refuse an impossible scale before writing anything
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise IoxhubError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    files = [f for feed in FEEDS for f in feed(out, seed)]
    files += wto_imports_bulk(out, seed, scale, progress)
    files += write_policies(out)
    manifest = SampleManifest(seed, float(scale), files, [e.as_dict() for e in PLANTED_EFFECTS], out)
    manifest.write(out)
    return manifest

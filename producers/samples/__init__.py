"""Sample feeds of the partnership's IOs: deterministic, realistic, messy, with planted policy effects.

`generate(out_dir, seed=0, scale=1.0) -> SampleManifest` writes the data files (CSV, SDMX-CSV,
JSON Lines, SDMX-ML 2.1), a column mapping next to each, the policy timeline (YAML) and manifest.json.
`PLANTED_EFFECTS` lists what impact estimates must recover. See docs/sample-feeds.md.
"""
from producers.samples.effects import PLANTED_EFFECTS, PlantedEffect
from producers.samples.generate import generate
from producers.samples.manifest import BadRow, SampleFile, SampleManifest

__all__ = ["generate", "SampleManifest", "SampleFile", "BadRow", "PLANTED_EFFECTS", "PlantedEffect"]

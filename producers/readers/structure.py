"""An SDMX data structure definition (DSD) given with `--structure FILE`, read once with `sdmx1`.

Entry point: `load_structure(path)` -> `Structure` (the sdmx1 DSD object, its dimension ids without the
time dimension, its attribute ids). The SDMX-ML reader hands the DSD to sdmx1 (a structure-specific
message cannot tell dimensions from attributes without it); the SDMX-CSV and SDMX-JSON readers take the
dimension and attribute lists from it. See docs/readers.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producers.filecheck import SourceError

TIME_DIMENSION = "TIME_PERIOD"


@dataclass(frozen=True)
class Structure:
    """A DSD: the sdmx1 object, and the ids of its series-key dimensions and attributes."""

    path: Path
    dimensions: tuple[str, ...]
    attributes: tuple[str, ...]
    dsd: Any = field(default=None, repr=False, compare=False)

    def roles(self, file: Path, names: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(dimensions, attributes) of a file with columns `names`; `SourceError` if it lacks a dimension
        of the DSD (the structure is not the file's)."""
        missing = [d for d in self.dimensions if d not in names]
        if missing:
            raise SourceError(f"{file}: not data of the structure in {self.path.name}: no column for its dimension(s) "
                              f"{', '.join(missing)} (the file's columns: {', '.join(names[:30])})")
        return self.dimensions, tuple(a for a in self.attributes if a in names)


def load_structure(path: str | Path) -> Structure:
    """Read an SDMX-ML structure message holding one DSD (the first if several); `SourceError` if not."""
    import sdmx            # on first use: publishing without a structure never pays for importing sdmx1
    from sdmx.message import StructureMessage

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such structure file (--structure)")
    try:
        message = sdmx.read_sdmx(path)
    except Exception as exc:  # sdmx1 raises many types on a document that is not SDMX (KeyError, XMLSyntaxError...)
        raise SourceError(f"{path}: not an SDMX structure message ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, StructureMessage) or not message.structure:
        raise SourceError(f"{path}: holds no data structure definition (expected an SDMX-ML structure message "
                          "with a DataStructure)")
    dsd = next(iter(message.structure.values()))
    dims = tuple(d.id for d in dsd.dimensions if d.id != TIME_DIMENSION
                 and type(d).__name__ != "TimeDimension")
    return Structure(path, dims, tuple(a.id for a in dsd.attributes), dsd)

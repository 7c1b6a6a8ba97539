"""The id of a dataset release: `compute_release_id(org, dataset_id, sources, mapping, bounds)`.

sha256 over the layout version, org, dataset, mapping, release metadata, chunk bounds and each file's
name, format and BLAKE3 digest (32 hex digits): known before anything is sent, deterministic, and
changed by anything that would change what is sent. Hashing a text file also checks it is UTF-8.
Rationale: docs/publishing.md.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from blake3 import blake3

from producers.filecheck import Utf8Scan
from producers.mapping import ColumnMapping
from producers.readers.base import SourceFile

LAYOUT_VERSION = 1


def compute_release_id(org: str, dataset_id: str, sources: Sequence[SourceFile], mapping: ColumnMapping,
                       bounds: tuple[int, int], structure: Path | None = None) -> str:
    """sha256 over everything that decides what is sent, 32 hex digits (`structure`: an SDMX DSD file read
    with the sources: its bytes count too)."""
    digest = hashlib.sha256()
    head = {"layout": LAYOUT_VERSION, "org": org, "dataset": dataset_id, "mapping": mapping.canonical(),
            "meta": [mapping.title, mapping.licence, mapping.source_url], "bounds": list(bounds),
            "files": [[s.path.name, s.format] for s in sources]}
    digest.update(json.dumps(head, sort_keys=True).encode())
    for src in sources:
        digest.update(file_blake3(src.path, Utf8Scan(src.path) if src.reader.streams else None))
    if structure is not None:
        digest.update(b"structure:" + structure.name.encode() + file_blake3(structure))
    return digest.hexdigest()[:32]


def file_blake3(path: Path, scan: Utf8Scan | None = None) -> bytes:
    """BLAKE3 of a file read in 1 MB pieces into one buffer (not `update_mmap`: mapped pages of a large
    file would count in the process's resident memory); `scan` checks the same pieces are UTF-8 text, so a
    bad byte anywhere in a text file stops the publish before anything is sent."""
    hasher = blake3(max_threads=1)
    buffer = bytearray(1 << 20)
    with open(path, "rb") as fh, memoryview(buffer) as view:
        while n := fh.readinto(buffer):
            hasher.update(view[:n])
            if scan is not None:
                scan.feed(buffer if n == len(buffer) else buffer[:n])
    if scan is not None:
        scan.finish()
    return hasher.digest()

"""A release cut into size-bounded dataset chunks (columnar, dictionary-encoded), and its manifest.

Entry points: `ChunkBuilder(info)` (`add` validated observations, `finish`; yields framed `Chunk`s, then
`manifest()`), `encode_chunk`, `ReleaseInfo`. How chunks are cut and their string tables built:
docs/contracts.md; the encoding itself is `ioxhub.contracts.dataset_chunk`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ioxhub.contracts import codec, dataset_chunk, release_manifest
from ioxhub.contracts.dataset_chunk import chunk_event_id
from ioxhub.contracts.registry import Registry, get_registry
from producers.mapping import STRING_FIELDS
from producers.validate import DictColumn, Observations

DEFAULT_MAX_BYTES = 900_000
DEFAULT_MAX_OBSERVATIONS = 250_000
_SLACK = 0.92                 # aim under the byte bound: the next chunk's rows are estimated
_MAX_INT = 2**31 - 1
_PROBE_ROWS = 4096            # rows scanned for used dictionary entries before scanning the rest


@dataclass(frozen=True)
class ReleaseInfo:
    org: str
    dataset_id: str
    release_id: str
    produced_at: int            # epoch milliseconds, the same on every chunk and the manifest
    licence: str | None = None
    source_url: str | None = None
    title: str | None = None
    unit_translations: tuple[tuple[str, str], ...] = ()     # the mapping's `units:`, for the manifest
    commodity_classification: str | None = None     # None: HS 2022 (or no commodity)


@dataclass(frozen=True)
class Chunk:
    seq: int
    event_id: str
    value: bytes                # framed: C3 01 + fingerprint + body
    observations: int

    @property
    def fingerprint(self) -> bytes:
        """The writer schema's fingerprint, from the frame (v1 or v2)."""
        return self.value[2:codec.SINGLE_OBJECT_HEADER_LEN]

    @property
    def body(self) -> memoryview:
        return memoryview(self.value)[codec.SINGLE_OBJECT_HEADER_LEN:]


class ChunkBuilder:
    """Feed validated observations with `add`; it yields full chunks; `finish` yields the last one."""

    def __init__(self, info: ReleaseInfo, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_observations: int = DEFAULT_MAX_OBSERVATIONS, registry: Registry | None = None):
        if max_bytes < 1000 or max_observations < 1:
            raise ValueError("chunk bounds too small")
        self.info = info
        self.max_bytes = max_bytes
        self.max_observations = max_observations
        self.registry = registry or get_registry()
        self.frames = {v: codec.SINGLE_OBJECT_MAGIC + self.registry.get(dataset_chunk.NAME, v).fingerprint
                       for v in dataset_chunk.VERSIONS}
        self.frame = self.frames[1]
        self.chunk_count = 0
        self.observation_count = 0
        self.bytes = 0
        self._digest = hashlib.sha256()
        self._pending: list[Observations] = []
        self._pending_rows = 0
        self._target = max(1, min(max_observations, max_bytes // 24))   # ~24 bytes per observation

    def add(self, observations: Observations) -> Iterator[Chunk]:
        if len(observations):
            self._pending.append(observations)
            self._pending_rows += len(observations)
        while self._pending_rows >= self._target:
            yield self._cut(self._target)

    def finish(self) -> Iterator[Chunk]:
        while self._pending_rows:
            yield self._cut(min(self._target, self._pending_rows))

    @property
    def checksum(self) -> str:
        return "sha256:" + self._digest.hexdigest()

    def manifest(self, rejected_at_source: int = 0) -> dict:
        """The release manifest record (schemas/release_manifest), after `finish`."""
        i = self.info
        return release_manifest.build(
            org=i.org, dataset_id=i.dataset_id, release_id=i.release_id, chunk_count=self.chunk_count,
            observation_count=self.observation_count, checksum=self.checksum, produced_at=i.produced_at,
            title=i.title, licence=i.licence, source_url=i.source_url, rejected_at_source=rejected_at_source,
            unit_translations=dict(i.unit_translations))

    # ------------------------------------------------------------------------------------------------
    def _take(self, rows: int) -> list[Observations]:
        """The first `rows` pending rows, as pieces (without removing them)."""
        pieces, left = [], rows
        for obs in self._pending:
            if left == 0:
                break
            piece = obs if len(obs) <= left else obs.slice(0, left)
            pieces.append(piece)
            left -= len(piece)
        return pieces

    def _drop(self, rows: int) -> None:
        while rows:
            head = self._pending[0]
            if len(head) <= rows:
                self._pending.pop(0)
                rows -= len(head)
                self._pending_rows -= len(head)
            else:
                self._pending[0] = head.slice(rows, len(head))
                self._pending_rows -= rows
                rows = 0

    def _cut(self, rows: int) -> Chunk:
        seq = self.chunk_count
        event_id = chunk_event_id(self.info.org, self.info.dataset_id, self.info.release_id, seq)
        while True:
            value = encode_chunk(self.info, seq, event_id, self._take(rows), frames=self.frames)
            size = len(value)
            if size <= self.max_bytes or rows == 1:
                break
            rows = max(1, int(rows * self.max_bytes * _SLACK / size))
        if size > self.max_bytes:
            raise ValueError(f"one observation alone encodes to {size} bytes, over the chunk bound {self.max_bytes}")
        self._drop(rows)
        self._target = max(1, min(self.max_observations, int(self.max_bytes * _SLACK * rows / size)))
        body = memoryview(value)[len(self.frame):]
        self._digest.update(body)
        self.chunk_count += 1
        self.observation_count += rows
        self.bytes += size
        return Chunk(seq, event_id, value, rows)


_Used = tuple[np.ndarray, np.ndarray, list[str]]   # row indexes, indexes of the entries used, their values


def encode_chunk(info: ReleaseInfo, seq: int, event_id: str, pieces: list[Observations],
                 frames: dict[int, bytes] | None = None) -> bytes:
    """The frame of its version (from `frames`, none if not given) then the Avro body of one chunk made
    of `pieces` (consecutive observations)."""
    names = list(STRING_FIELDS)
    attr_names = list(dict.fromkeys(a for p in pieces for a in p.attributes))
    dim_names = list(dict.fromkeys(d for p in pieces for d in p.dimensions))
    has_action = any(p.action is not None for p in pieces)
    # Every text column as one DictColumn per piece (None where a piece lacks the attribute, dimension
    # or action), and what each piece uses of it.
    text = [[p.text[n] for p in pieces] for n in names] + [[p.attributes.get(a) for p in pieces] for a in attr_names] \
        + [[p.dimensions.get(d) for p in pieces] for d in dim_names] + ([[p.action for p in pieces]] if has_action else [])
    used = [[_used(col, len(p)) for col, p in zip(cols, pieces)] for cols in text]
    # String table: columns with fewer distinct values first, each sorted: small indexes (one varint
    # byte) for the low-cardinality columns, and an order that depends only on the chunk's rows. Plain
    # Python sets and sorts: a chunk has few distinct strings (code point order is UTF-8 byte order).
    distinct = [sorted(set().union(*(values for _, _, values in per_piece))) for per_piece in used]
    distinct.append(sorted({p.file for p in pieces}))
    by_size = sorted(range(len(distinct)), key=lambda i: len(distinct[i]))     # stable: ties keep column order
    strings = list(dict.fromkeys(s for i in by_size for s in distinct[i]))
    position = dict(zip(strings, range(len(strings))))

    def remapped(cols: list[DictColumn | None], per_piece: list[_Used]) -> dataset_chunk.Lookup:
        """Per piece, its row indexes and each dictionary entry's table position (extra last slot: -1)."""
        parts = []
        for col, (indices, entries, values) in zip(cols, per_piece):
            table = np.full(1 + (len(col.dictionary) if col is not None else 0), -1, np.int32)
            table[entries] = list(map(position.__getitem__, values))
            parts.append((table, indices))
        return dataset_chunk.Lookup(parts)

    lookups = [remapped(cols, per_piece) for cols, per_piece in zip(text, used)]
    columns: dict[str, np.ndarray | dataset_chunk.Lookup] = dict(zip(names, lookups))
    attributes = list(zip(attr_names, lookups[len(names):len(names) + len(attr_names)]))
    dimensions = list(zip(dim_names, lookups[len(names) + len(attr_names):len(names) + len(attr_names) + len(dim_names)]))
    action = lookups[-1] if has_action else None
    version = dataset_chunk.version_of(dimensions, action, info.commodity_classification)
    columns["source_file"] = _concat([np.full(len(p), position[p.file], np.int32) for p in pieces])
    lines = _concat([p.lines for p in pieces])
    if len(lines) and lines.max() > _MAX_INT:
        raise ValueError("source line beyond 2**31-1")
    columns["source_line"] = lines
    columns["unit_mult"] = _concat([p.unit_mult for p in pieces])
    value = _concat([p.value for p in pieces])
    missing = np.flatnonzero(_concat([p.missing for p in pieces]))
    return dataset_chunk.chunk_body(
        event_id=event_id, org=info.org, dataset_id=info.dataset_id, release_id=info.release_id,
        chunk_seq=seq, chunk_count=None, produced_at=info.produced_at, licence=info.licence,
        source_url=info.source_url, strings=strings, columns=columns, value=value,
        missing_values=missing, attributes=attributes, dimensions=dimensions, action=action,
        commodity_classification=info.commodity_classification, prefix=frames[version] if frames else b"")


def _used(col: DictColumn | None, rows: int) -> _Used:
    """What a piece uses of a text column's dictionary, found by a numpy scatter of the row indexes.

    The row indexes are made intp once: numpy scatters and gathers intp indexes ~1.5x faster than int32
    ones (it converts them on every call).
    """
    if col is None:
        return np.full(rows, -1, np.intp), np.zeros(0, np.intp), []
    if len(col.dictionary) == 0:
        return col.indices, np.zeros(0, np.intp), []
    indices = col.indices.astype(np.intp)
    hit = np.zeros(len(col.dictionary) + 1, dtype=bool)
    hit[indices[:_PROBE_ROWS]] = True   # index -1 (absent) marks the extra last slot
    if hit[:-1].all():                  # small dictionaries are mostly all used within the first rows
        return indices, np.arange(len(col.dictionary)), col.dictionary.to_pylist()
    hit[indices[_PROBE_ROWS:]] = True
    entries = np.flatnonzero(hit[:-1])
    return indices, entries, col.dictionary.take(entries).to_pylist()


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if len(parts) != 1 else parts[0]

"""The dataset_chunk contract (schemas/dataset_chunk/v1, v2): encode with numpy, decode to numpy, check content.

Entry points: `chunk_body(...)` (the Avro body of one chunk, byte-identical to fastavro's) with `Lookup`
for dictionary columns, and `version_of(...)` (the version a chunk is written in: v1 unless it carries
dimensions, actions or a commodity classification); `decode(value)` (a `codec.Decoded` whose columns are
numpy arrays, `codec.decode` for anything but v1/v2 single-object chunks); `check_chunk(record)` (what the
schema cannot say); `chunk_event_id`. Why the encoder and decoder are hand-written, and how: docs/contracts.md.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ioxhub.contracts import codec
from ioxhub.contracts.codec import ContentError
from ioxhub.contracts.registry import Registry, get_registry

NAME, VERSION = "dataset_chunk", 2     # the latest version: this module writes and reads v1 and v2 fast
VERSIONS = (1, 2)
INT32 = (-(1 << 31), (1 << 31) - 1)

# Reasons (the dead-letter `reason` of a chunk refused for its content).
UNEQUAL_COLUMNS = "unequal-columns"
INDEX_OUT_OF_RANGE = "index-out-of-range"
EMPTY_STRING_TABLE = "empty-string-table"
BAD_MISSING_POSITION = "bad-missing-position"
INT_OVERFLOW = "int-overflow"
NON_FINITE_VALUE = "non-finite-value"
BAD_CHUNK_SEQ = "bad-chunk-seq"
BAD_DIMENSION = "bad-dimension"

INDEX_COLUMNS = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit", "obs_status",
                 "source_file")
ROW_COLUMNS = INDEX_COLUMNS + ("value", "unit_mult", "source_line")
_INT_ARRAYS = ("indicator", "ref_area", "counterpart_area", "commodity", "period")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def chunk_event_id(org: str, dataset_id: str, release_id: str, seq: int) -> str:
    """The event id of chunk `seq` of a release: deterministic, so republishing creates nothing new."""
    return hashlib.sha256(f"{org}/{dataset_id}/{release_id}/{seq}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------- encode
Buffer = bytes | np.ndarray     # parts for bytes.join: array bodies are not copied before the final join


def varints(values: np.ndarray) -> bytes:
    """Zigzag varints of a signed integer array, concatenated (Avro int/long encoding)."""
    return _varints(values).tobytes()


@dataclass(frozen=True)
class Lookup:
    """An int column given as `table[indices]`, one (table, indices) pair per row range, in order.

    For a dictionary column (table: each entry's string-table position) this encodes each table entry
    once and gathers the encoded words, instead of remapping every row and then encoding every row.
    """

    parts: Sequence[tuple[np.ndarray, np.ndarray]]

    def __len__(self) -> int:
        return sum(len(indices) for _, indices in self.parts)

    def varints(self) -> list[np.ndarray]:
        return [_lookup_varints(table, indices) for table, indices in self.parts]


def _varints(values: np.ndarray) -> np.ndarray:
    v = _ints(values)
    if len(v) == 0:
        return np.zeros(0, np.uint8)
    words = _words(v)
    return _wide_varints(v) if words is None else _join(words)


def _lookup_varints(table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """`_varints(table[indices])`; `np.take` with intp indexes is the cheapest numpy gather."""
    if len(indices) == 0:
        return np.zeros(0, np.uint8)
    table = _ints(table)
    words = _words(table)
    return _wide_varints(table.take(indices)) if words is None else _join(words.take(indices))


def _ints(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    return v if v.dtype.kind == "i" else v.astype(np.int64)


def _words(v: np.ndarray) -> np.ndarray | None:
    """Each value's varint, continuation bits included, in the low bytes of a little-endian uint.

    The uint has 1, 2, 4 or 8 bytes, the fewest that hold the widest varint, and the zigzag is done in
    the signed type of that size (ops on int8 cost a quarter of those on int32). None when a value
    needs 9 or 10 bytes (longs beyond +-2**55).
    """
    lo, hi = int(v.min()), int(v.max())
    width = _width(max(2 * hi, -2 * lo - 1))
    if width > 8:
        return None
    size = 1 << (width - 1).bit_length()
    signed = v.astype(f"<i{size}", copy=False)          # fits: |v| < 2**(7 * width - 1)
    z = signed + signed                                 # v << 1, but vectorized for int8 too
    if lo < 0:
        z ^= signed >> (8 * size - 1)
    z = z.view(f"<u{size}")
    if width == 1:
        return z
    words = z & 0x7F                                    # 7-bit group k goes to byte k
    for k in range(1, width):
        words |= (z << k) & (0x7F << 8 * k)
    least = 2 * lo if lo >= 0 else -2 * hi - 1 if hi < 0 else 0     # a lower bound when signs mix
    if _width(least) == width:                          # all as wide: every byte but the last continues
        words |= int.from_bytes(b"\x80" * (width - 1), "little")
        return words
    # Byte k continues iff a higher group is non-zero: OR every higher byte down, then test each byte
    # for non-zero by adding 0x7F (groups are <= 0x7F, so nothing carries into the next byte).
    ones = int.from_bytes(b"\x01" * size, "little")
    above = words >> 8
    for shift in (8, 16, 32):
        if shift < 8 * size:
            above |= above >> shift
    words |= (above + 0x7F * ones) & (0x80 * ones)
    return words


def _join(words: np.ndarray) -> np.ndarray:
    """The varints held in `words` (see `_words`), concatenated, as a C-contiguous array.

    When all varints have the same length, as chunk columns mostly do (small indexes, HS codes, line
    numbers), the words are written out as they are; only mixed lengths pay for a compaction.
    """
    shortest, longest = (max(1, (int(w).bit_length() + 7) // 8) for w in (words.min(), words.max()))
    if shortest == longest:
        return _low_bytes(words, longest)
    size = 1 << (longest - 1).bit_length()
    words = words.astype(f"<u{size}", copy=False)
    ones = int.from_bytes(b"\x01" * size, "little")
    keep = ((((words << 8) | 0x80) >> 7) & ones).view(bool)   # byte 0, and every byte after a continuation
    return np.compress(keep, words.view(np.uint8))


def _width(z: int) -> int:
    """Bytes of the varint of a non-negative `z`."""
    return max(1, (z.bit_length() + 6) // 7)


def _low_bytes(words: np.ndarray, width: int) -> np.ndarray:
    """The low `width` bytes of each little-endian word, as packed records (fields of 4, 2, 1 bytes)."""
    if words.itemsize == width:
        return words
    sizes = [size for size in (4, 2, 1) if width & size]
    packed = np.empty(len(words), [(str(i), f"<u{size}") for i, size in enumerate(sizes)])
    offset = 0
    for i, size in enumerate(sizes):
        packed[str(i)] = words >> (8 * offset) if offset else words
        offset += size
    return packed


def _wide_varints(v: np.ndarray) -> np.ndarray:
    """Varints of longs up to 10 bytes: an (n, 10) byte matrix and a compaction (slow, and rare)."""
    v = v.astype(np.int64, copy=False)
    z = ((v << 1) ^ (v >> 63)).view(np.uint64)
    groups = np.empty((len(z), 10), dtype=np.uint8)
    keep = np.empty((len(z), 10), dtype=bool)
    keep[:, 0] = True
    for k in range(10):
        groups[:, k] = (z >> (7 * k)) & 0x7F
        if k < 9:
            keep[:, k + 1] = (z >> (7 * (k + 1))) != 0
    groups[:, :9] |= keep[:, 1:].view(np.uint8) << 7    # a byte continues when the next one is kept
    return np.compress(keep.ravel(), groups.ravel())


def long(value: int) -> bytes:
    """One zigzag varint, in plain Python: a numpy call per header field would cost more than the loop."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return long(len(raw)) + raw


def optional_string(text: str | None) -> bytes:
    """A ["null", "string"] union."""
    return b"\x00" if text is None else b"\x02" + string(text)


def optional_int(value: int | None) -> bytes:
    """A ["null", "int"] union."""
    return b"\x00" if value is None else b"\x02" + long(value)


def int_array(values: np.ndarray | Lookup) -> list[Buffer]:
    """An int/long array as buffers to join: count, items, end (one block, as fastavro writes)."""
    if len(values) == 0:
        return [b"\x00"]
    items = values.varints() if isinstance(values, Lookup) else [_varints(values)]
    return [long(len(values)), *items, b"\x00"]


def double_array(values: np.ndarray) -> list[Buffer]:
    if len(values) == 0:
        return [b"\x00"]
    return [long(len(values)), np.ascontiguousarray(values, dtype="<f8"), b"\x00"]


_SHORT_LENGTH = [long(n) for n in range(64)]           # the one-byte length varints


def string_array(texts: Sequence[str]) -> bytes:
    """Lengths and UTF-8 bytes interleaved by slice assignment: no Python-level call per string."""
    if len(texts) == 0:
        return b"\x00"
    encoded = list(map(str.encode, texts))
    lengths = list(map(len, encoded))
    parts = [b""] * (2 * len(encoded))                  # length, bytes, length, bytes, ...
    parts[0::2] = map(_SHORT_LENGTH.__getitem__, lengths) if max(lengths) < 64 else map(long, lengths)
    parts[1::2] = encoded
    return long(len(encoded)) + b"".join(parts) + b"\x00"


def version_of(dimensions: Sequence = (), action: object = None, commodity_classification: str | None = None) -> int:
    """The version a chunk is written in: the oldest that holds what it carries (v1 readers keep reading
    every chunk of a dataset without extra dimensions, actions or a commodity classification)."""
    return 2 if dimensions or action is not None or commodity_classification is not None else 1


def chunk_body(*, event_id: str, org: str, dataset_id: str, release_id: str, chunk_seq: int,
               chunk_count: int | None, produced_at: int, licence: str | None, source_url: str | None,
               strings: Sequence[str], columns: dict[str, np.ndarray | Lookup], value: np.ndarray,
               missing_values: np.ndarray, attributes: Sequence[tuple[str, np.ndarray | Lookup]],
               dimensions: Sequence[tuple[str, np.ndarray | Lookup]] = (), action: np.ndarray | Lookup | None = None,
               commodity_classification: str | None = None, prefix: bytes = b"") -> bytes:
    """`prefix` then the Avro body of one DatasetChunk, fields in schema order, in one join: v1, or v2
    when `version_of(dimensions, action, commodity_classification)` says so (the caller frames it so).

    `columns`: int arrays (or `Lookup`s) for indicator, ref_area, counterpart_area, commodity, period,
    unit, unit_mult (the multiplier itself), obs_status, source_file, source_line. `prefix` (the
    single-object frame) saves copying the ~1 MB body into a framed value afterwards.
    """
    out = [
        prefix, string(event_id), string(org), string(dataset_id), string(release_id),
        long(chunk_seq), optional_int(chunk_count), long(produced_at),
        optional_string(licence), optional_string(source_url),
        string_array(strings),
    ]
    for name in ("indicator", "ref_area", "counterpart_area", "commodity", "period"):
        out += int_array(columns[name])
    out += double_array(value)
    out += int_array(missing_values)
    for name in ("unit", "unit_mult", "obs_status"):
        out += int_array(columns[name])
    out += _named_columns(attributes)
    out += int_array(columns["source_file"]) + int_array(columns["source_line"])
    if version_of(dimensions, action, commodity_classification) == 2:
        out += _named_columns(dimensions)
        out += int_array(action) if action is not None else [b"\x00"]
        out.append(optional_string(commodity_classification))
    return b"".join(out)


def _named_columns(columns: Sequence[tuple[str, np.ndarray | Lookup]]) -> list[Buffer]:
    """An array of {name, values} records (attributes, dimensions)."""
    if not columns:
        return [b"\x00"]
    out: list[Buffer] = [long(len(columns))]
    for name, values in columns:
        out.append(string(name))
        out += int_array(values)
    out.append(b"\x00")
    return out


# ------------------------------------------------------------------------------------------- decode
class _Unsupported(Exception):
    """The fast path does not take this value; fastavro decides."""


def decode(value: bytes, registry: Registry | None = None) -> codec.Decoded:
    """Decode a framed event: the fast path for dataset_chunk v1, `codec.decode` for everything else
    (errors and their reasons are the codec's). The observation columns are numpy arrays (int32; value float64).
    `registry`: the schemas to resolve against (default: the global settings')."""
    registry = registry or get_registry()
    try:
        writer, framing, offset = codec.writer_of(value, registry)
    except codec.DecodeError:
        return codec.decode(value, registry)
    if writer.name != NAME or writer.version not in VERSIONS or registry.latest(NAME).version != VERSION:
        return codec.decode(value, registry)
    try:
        record = _Reader(value, offset).chunk(writer.version)
    except Exception:    # anything odd (truncated, overflowing, not UTF-8...): fastavro decides and names it
        return codec.decode(value, registry)
    return codec.Decoded(writer.name, writer.version, writer.fingerprint, record, framing, offset)


class _Reader:
    def __init__(self, value: bytes, offset: int):
        self.value = value
        self.buf = np.frombuffer(value, np.uint8)
        self.pos = offset
        self._ends: np.ndarray | None = None

    # --- scalars (a few per chunk: plain Python) ------------------------------------------------
    def long(self) -> int:
        value, shift, pos, data = 0, 0, self.pos, self.value
        while True:
            byte = data[pos]               # IndexError past the end: truncated
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 63:
                raise _Unsupported("varint longer than 10 bytes")
        self.pos = pos
        return (value >> 1) ^ -(value & 1)

    def int(self) -> int:
        value = self.long()
        if not INT32[0] <= value <= INT32[1]:
            raise _Unsupported("int out of range")
        return value

    def string(self) -> str:
        size = self.long()
        if size < 0 or self.pos + size > len(self.value):
            raise _Unsupported("bad string length")
        text = self.value[self.pos:self.pos + size].decode("utf-8")
        self.pos += size
        return text

    def optional(self, read):
        branch = self.long()
        if branch == 0:
            return None
        if branch != 1:
            raise _Unsupported("bad union branch")
        return read()

    # --- arrays ---------------------------------------------------------------------------------
    def blocks(self):
        """Yield the item count of each block of an array (the reader then reads that many items)."""
        while True:
            count = self.long()
            if count == 0:
                return
            if count < 0:
                count = -count
                self.long()                # the block's byte size: not needed
            yield count

    def strings(self) -> list[str]:
        out: list[str] = []
        for count in self.blocks():
            out.extend(self.string() for _ in range(count))
        return out

    def ints(self) -> np.ndarray:
        parts = [self._varints(count) for count in self.blocks()]
        if not parts:
            return np.zeros(0, np.int32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def doubles(self) -> np.ndarray:
        parts = []
        for count in self.blocks():
            end = self.pos + 8 * count
            if end > len(self.value):
                raise _Unsupported("doubles past the end")
            parts.append(np.frombuffer(self.value, "<f8", count, self.pos))
            self.pos = end
        if not parts:
            return np.zeros(0, np.float64)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _varints(self, count: int) -> np.ndarray:
        """`count` zig-zag varints from the cursor, decoded at once (int32)."""
        if self._ends is None:
            self._ends = np.flatnonzero(self.buf < 0x80)    # positions of every varint's last byte
        first = int(np.searchsorted(self._ends, self.pos))
        last = self._ends[first:first + count]
        if len(last) < count:
            raise _Unsupported("varints past the end")
        starts = np.empty(count, np.int64)
        starts[0] = self.pos
        starts[1:] = last[:-1] + 1
        lengths = last - starts + 1
        longest = int(lengths.max())
        if longest == 1:
            raw = self.buf[starts].astype(np.int64)
        else:
            if longest > 5:
                raise _Unsupported("int varint longer than 5 bytes")
            raw = np.zeros(count, np.int64)
            for k in range(longest):
                has = lengths > k
                raw[has] |= (self.buf[starts[has] + k].astype(np.int64) & 0x7F) << (7 * k)
        self.pos = int(last[-1]) + 1
        values = (raw >> 1) ^ -(raw & 1)
        if longest == 5 and (values.min() < INT32[0] or values.max() > INT32[1]):
            raise _Unsupported("int out of range")
        return values.astype(np.int32)

    # --- the record -----------------------------------------------------------------------------
    def named_columns(self) -> list[dict]:
        out = []
        for count in self.blocks():
            for _ in range(count):
                name = self.string()
                out.append({"name": name, "values": self.ints()})
        return out

    def chunk(self, version: int) -> dict:
        """The record as the latest version has it (a v1 chunk gets v2's defaults)."""
        r: dict = {}
        for name in ("event_id", "org", "dataset_id", "release_id"):
            r[name] = self.string()
        r["chunk_seq"] = self.int()
        r["chunk_count"] = self.optional(self.int)
        r["produced_at"] = _EPOCH + dt.timedelta(milliseconds=self.long())
        r["licence"] = self.optional(self.string)
        r["source_url"] = self.optional(self.string)
        r["strings"] = self.strings()
        for name in _INT_ARRAYS:
            r[name] = self.ints()
        r["value"] = self.doubles()
        r["missing_values"] = self.ints()
        r["unit"] = self.ints()
        r["unit_mult"] = self.ints()
        r["obs_status"] = self.ints()
        r["attributes"] = self.named_columns()
        r["source_file"] = self.ints()
        r["source_line"] = self.ints()
        if version >= 2:
            r["dimensions"] = self.named_columns()
            r["action"] = self.ints()
            r["commodity_classification"] = self.optional(self.string)
        else:
            r["dimensions"], r["action"], r["commodity_classification"] = [], np.zeros(0, np.int32), None
        if self.pos != len(self.value):
            raise _Unsupported("trailing bytes")
        return r


# -------------------------------------------------------------------------------------------- check
def check_chunk(record: dict[str, Any]) -> None:
    """A dataset chunk: sequence numbers, equal column lengths (`action` may be empty), dimension names
    (not empty, unique), indexes within the string table, missing positions within the chunk, finite
    values, ints within int32."""
    codec.check_ids(record)
    seq, count = record["chunk_seq"], record.get("chunk_count")
    if not isinstance(seq, int) or seq < 0 or (count is not None and not 0 <= seq < count):
        raise ContentError(BAD_CHUNK_SEQ, f"chunk_seq {seq} with chunk_count {count}")
    n = len(record["indicator"])
    lengths = {name: len(record[name]) for name in ROW_COLUMNS}
    dimensions, action = record.get("dimensions", []), record.get("action", [])
    lengths.update({f"attributes[{a['name']}]": len(a["values"]) for a in record["attributes"]})
    lengths.update({f"dimensions[{d['name']}]": len(d["values"]) for d in dimensions})
    if len(action):
        lengths["action"] = len(action)
    bad = {name: size for name, size in lengths.items() if size != n}
    if bad:
        shown = ", ".join(f"{k} has {v}" for k, v in sorted(bad.items()))
        raise ContentError(UNEQUAL_COLUMNS, f"indicator has {n} values, {shown}")
    names = [d["name"] for d in dimensions]
    if "" in names or len(set(names)) < len(names):
        raise ContentError(BAD_DIMENSION, f"dimension names {names}: each must be non-empty and unique")
    strings = len(record["strings"])
    if n and not strings:
        raise ContentError(EMPTY_STRING_TABLE, f"{n} observations and an empty string table")
    columns = [(name, record[name]) for name in INDEX_COLUMNS] + \
              [(f"attributes[{a['name']}]", a["values"]) for a in record["attributes"]] + \
              [(f"dimensions[{d['name']}]", d["values"]) for d in dimensions] + [("action", action)]
    for name, column in columns:
        low, high = _bounds(name, column)
        if low < -1 or high >= strings:
            shown = low if low < -1 else high
            raise ContentError(INDEX_OUT_OF_RANGE,
                               f"field {name}: string index {shown} outside -1..{strings - 1}")
    for name in ("unit_mult", "source_line"):
        _bounds(name, record[name])
    missing = record["missing_values"]
    low, high = _bounds("missing_values", missing)
    if len(missing) and (low < 0 or high >= n):
        raise ContentError(BAD_MISSING_POSITION,
                           f"field missing_values: position {low if low < 0 else high} outside 0..{n - 1}")
    values = np.asarray(record["value"], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        listed = np.zeros(n, dtype=bool)
        if len(missing):
            listed[np.asarray(missing, dtype=np.int64)] = True
        bad_positions = np.flatnonzero(~finite & ~listed)
        if len(bad_positions):
            first = int(bad_positions[0])
            raise ContentError(NON_FINITE_VALUE, f"field value: {len(bad_positions)} non-finite value(s) "
                                                 f"(e.g. {values[first]} at position {first})")


def _bounds(name: str, column) -> tuple[int, int]:
    """(min, max) of an int column (0, -1 when empty); ContentError when a value does not fit int32."""
    if not len(column):
        return 0, -1
    if isinstance(column, np.ndarray):
        return int(column.min()), int(column.max())
    low, high = min(column), max(column)      # fastavro lists: Python ints, possibly beyond int32
    if low < INT32[0] or high > INT32[1]:
        raise ContentError(INT_OVERFLOW, f"field {name}: {low if low < INT32[0] else high} does not fit an Avro int")
    return low, high

"""Avro binary encoding of a dataset chunk body with numpy (schemas/dataset_chunk/v1.avsc).

Hand-written on purpose: fastavro needs every int array as a Python list and writes it element by
element (~1.9M observations/s for this layout, platform-facts), which alone would cost more than parsing
the CSV. Here each int column is zigzag-varint encoded by a handful of numpy operations over the whole
array (dictionary columns by one gather of their few distinct varints, `Lookup`), and array bodies
stay numpy arrays until the one `bytes.join` of the chunk, so encoding costs a few milliseconds per
100k observations.

The output is byte-for-byte what `fastavro.schemaless_writer` writes for the same record (a test checks
it against the schema file), so any Avro implementation decodes it. Arrays are written as one block
(count, items, 0), as fastavro does. If dataset_chunk gets a v2, `CHUNK_SCHEMA_VERSION` stays 1 until
this encoder writes v2, and the frame names the version it wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

CHUNK_SCHEMA = "dataset_chunk"
CHUNK_SCHEMA_VERSION = 1

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


def chunk_body(*, event_id: str, org: str, dataset_id: str, release_id: str, chunk_seq: int,
               chunk_count: int | None, produced_at: int, licence: str | None, source_url: str | None,
               strings: Sequence[str], columns: dict[str, np.ndarray | Lookup], value: np.ndarray,
               missing_values: np.ndarray, attributes: Sequence[tuple[str, np.ndarray | Lookup]],
               prefix: bytes = b"") -> bytes:
    """`prefix` then the Avro body of one DatasetChunk (v1), fields in schema order, in one join.

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
    if attributes:
        out.append(long(len(attributes)))
        for name, values in attributes:
            out.append(string(name))
            out += int_array(values)
    out.append(b"\x00")
    out += int_array(columns["source_file"]) + int_array(columns["source_line"])
    return b"".join(out)

"""The numpy varint encoder: byte-identical to a plain zigzag loop and to fastavro for every width."""
from __future__ import annotations

import io

import fastavro
import numpy as np
import pytest

from ioxhub.producers import wire

LONGS = {"type": "array", "items": "long"}
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def reference(values) -> bytes:
    """Zigzag varints, one value at a time (the Avro spec, literally)."""
    out = bytearray()
    for v in map(int, values):
        z = (v << 1) ^ (v >> 63)
        while z >= 0x80:
            out.append(z & 0x7F | 0x80)
            z >>= 7
        out.append(z)
    return bytes(out)


def fastavro_body(values) -> bytes:
    """The items of an Avro long array as fastavro writes them (count prefix and end marker cut off)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, LONGS, [int(v) for v in values])
    return out.getvalue()[len(wire.long(len(values))):-1] if len(values) else b""


def bounds(width: int) -> tuple[int, int]:
    """The non-negative values whose varint (of their zigzag) has `width` bytes, as a [lo, hi] range."""
    lo = 0 if width == 1 else 1 << (7 * (width - 1))
    hi = min((1 << (7 * width)) - 1, 2**64 - 1)
    return lo // 2, hi // 2          # zigzag(v) = 2v for v >= 0


def random_array(rng, n: int, widths: list[int], *, negative: bool = True) -> np.ndarray:
    """Values whose varints take the given widths, mixed in random order, both signs."""
    out = []
    for w in widths:
        lo, hi = bounds(w)
        v = [int(x) for x in rng.integers(lo, hi, n, endpoint=True, dtype=np.uint64)] if hi > lo else [lo] * n
        out += v
        if negative:
            out += [-x - 1 for x in v]    # zigzag(-x-1) = 2x+1: the same width
    rng.shuffle(out)
    return np.array(out, dtype=np.int64)


def test_width_bounds_are_right():
    for w in range(1, 11):
        lo, hi = bounds(w)
        assert len(reference([lo])) == len(reference([hi])) == len(reference([-hi - 1])) == w
        if w < 10:
            assert len(reference([hi + 1])) == w + 1


@pytest.mark.parametrize("width", range(1, 11))
def test_uniform_width(width):
    rng = np.random.default_rng(width)
    for negative in (False, True):
        v = random_array(rng, 500, [width], negative=negative)
        assert wire.varints(v) == reference(v) == fastavro_body(v)


@pytest.mark.parametrize("widths", [[1, 2], [2, 3], [1, 3], [1, 2, 3], [3, 4], [4, 5], [1, 5], [5, 6, 7, 8],
                                    [1, 8], [8, 9], [1, 10], [9, 10], list(range(1, 11))])
def test_mixed_widths(widths):
    rng = np.random.default_rng(len(widths) * 100 + widths[-1])
    for negative in (False, True):
        v = random_array(rng, 300, widths, negative=negative)
        assert wire.varints(v) == reference(v) == fastavro_body(v)


def test_extremes_and_edges():
    cases = [
        [], [0], [-1], [63], [64], [-64], [-65], [0] * 1000, [-1] * 1000, [127, 128],
        [2**31 - 1, -2**31], [2**31, -2**31 - 1], [INT64_MAX, INT64_MIN], [INT64_MIN], [INT64_MAX, 0, -1],
        [-1000, 1000], [-(2**20), 2**20],                    # signs mixed, nothing near zero
        list(range(-70, 70)), list(range(8000, 8400)),        # crossings of the 1/2 and 2/3 byte bounds
        [0] + [2**(7 * k - 1) for k in range(1, 10)],          # zigzag 2**(7k): zero groups below the top one
        [0] + [-(2**(7 * k - 1)) for k in range(1, 10)],       # zigzag 2**(7k) - 1: all groups 0x7F
        [1, 2**48], [1, 2**27, 2**20],
    ]
    for values in cases:
        v = np.array(values, dtype=np.int64)
        assert wire.varints(v) == reference(values) == fastavro_body(values), values


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, bool])
def test_input_dtypes(dtype):
    info = np.iinfo(dtype) if dtype is not bool else None
    lo, hi = (0, 1) if info is None else (info.min, info.max)
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.integers(lo, hi, 2000, endpoint=True, dtype=np.int64), [lo, hi]]).astype(dtype)
    assert wire.varints(v) == reference(v.astype(np.int64))
    assert wire.varints(v[::3]) == reference(v[::3].astype(np.int64))        # strided input


def test_single_values_match_fastavro():
    for value in [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2**31 - 1, -2**31, 2**55, -2**55 - 1, INT64_MIN, INT64_MAX]:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, "long", value)
        assert wire.long(value) == out.getvalue() == wire.varints(np.array([value]))


def test_lookup_is_the_varints_of_the_gathered_table():
    rng = np.random.default_rng(11)
    tables = [
        np.array([-1], np.int32),                                    # absent everywhere
        np.array([3, 1, 2, -1], np.int32),
        rng.integers(0, 64, 50).astype(np.int32),
        rng.integers(-1, 900, 703).astype(np.int32),                 # 1 and 2 bytes
        rng.integers(60, 900, 703).astype(np.int32),                 # 2 bytes only
        np.array([INT64_MAX, INT64_MIN, 0, -1], np.int64),           # 10 bytes
    ]
    for table in tables:
        for n in (0, 1, 5000):
            for dtype in (np.int32, np.intp):
                indices = rng.integers(-1, len(table), n).astype(dtype)
                lookup = wire.Lookup([(table, indices), (table, indices[: n // 2])])
                plain = np.concatenate([table[indices], table[indices[: n // 2]]])
                assert len(lookup) == len(plain)
                assert b"".join(wire.int_array(lookup)) == b"".join(wire.int_array(plain))
                assert b"".join(lookup.varints()) == reference(plain)


def test_uniform_subset_of_a_mixed_table():
    table = np.array([1, 200, 300, -1], np.int32)            # 1 and 2 bytes, rows use only the 2-byte ones
    indices = np.array([1, 2, 2, 1], np.intp)
    assert b"".join(wire.Lookup([(table, indices)]).varints()) == reference(table[indices])


def test_string_array_matches_fastavro():
    texts = ["", "a", "é" * 31, "é" * 32, "x" * 63, "x" * 64, "€" * 100, "z" * 20000, "FRA"]
    for strings in (texts, texts[:2], ["KG"] * 3, [t for t in texts if len(t.encode()) < 64]):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, {"type": "array", "items": "string"}, strings)
        assert wire.string_array(strings) == out.getvalue()
    assert wire.string_array([]) == b"\x00"

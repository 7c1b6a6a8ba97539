"""The checks a partner file passes before any reader opens it, and the UTF-8 scan of whole files."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.filecheck import HEAD_BYTES, MAX_LINE_BYTES, SourceError, Utf8Scan, check_file, head_problem
from producers.readers import open_source

TEXT = "IND,AREA,VALUE\nSEIZ,Côte d'Ivoire,1\nSEIZ,FRA,2\n"


@pytest.mark.parametrize("head, says", [
    (TEXT.encode("utf-16"), "is UTF-16 (BOM FF FE); save it as UTF-8"),
    (TEXT.encode("utf-16-be").join([b"\xfe\xff", b""]), "is UTF-16 (BOM FE FF); save it as UTF-8"),
    (TEXT.encode("utf-32"), "is UTF-32 (BOM FF FE 00 00); save it as UTF-8"),
    (TEXT.encode("utf-16-le"), "is UTF-16 without a BOM (a NUL byte beside every character); save it as UTF-8"),
    (TEXT.encode("utf-16-be"), "is UTF-16 without a BOM (a NUL byte beside every character); save it as UTF-8"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "is a ZIP archive (an Excel .xlsx workbook?), not text"),
    (b"\x1f\x8b\x08\x00" + bytes(50), "is gzip-compressed, not text"),
    (b"IND,AREA\nSEIZ,\x00FRA\n", "looks binary (NUL bytes, the first at byte 14), not text"),
    (bytes(range(1, 9)) * 4 + b"\xff\xfe\xfd", "looks binary (control bytes), not text"),
    (TEXT.encode("latin-1"), "not UTF-8 text (byte 0xF4 at line 2, column 7); save it as UTF-8"),
    (TEXT.encode("cp1252").replace(b"\xf4", "\u2019".encode("cp1252")), "not UTF-8 text (byte 0x92 at line 2, column 7)"),
])
def test_a_head_that_is_not_utf8_text_is_named(head, says):
    problem = head_problem(head, "CSV", whole=True)
    assert problem is not None and problem.startswith(says)


def test_utf8_text_passes_with_or_without_bom_and_a_character_cut_at_the_sample_end():
    data = TEXT.encode()
    assert head_problem(data, "CSV", whole=True) is None
    assert head_problem(b"\xef\xbb\xbf" + data, "CSV", whole=True) is None
    cut = data[:data.index("ô".encode()) + 1]                 # half of a two-byte character
    assert head_problem(cut, "CSV", whole=False) is None        # the file goes on: the rest is not seen yet
    assert head_problem(cut, "CSV", whole=True).startswith("not UTF-8 text (byte 0xC3 at line 2, column 7)")


def test_line_one_must_end_within_the_sample_in_line_formats_only():
    head = b"x" * HEAD_BYTES
    assert head_problem(head, "CSV", whole=False) == "line 1 is longer than 64 KB: not a CSV file?"
    assert head_problem(head, "JSON Lines", whole=False) == "line 1 is longer than 64 KB: not a JSON Lines file?"
    assert head_problem(head, None, whole=False) is None        # not a line-based format: XML may be one line
    assert head_problem(b"x" * 100, "CSV", whole=True) is None  # the whole file: one line without newline


def test_check_file_names_a_directory_a_missing_file_and_an_empty_one(tmp_path):
    (tmp_path / "d.csv").mkdir()
    (tmp_path / "e.csv").write_bytes(b"")
    (tmp_path / "ok.csv").write_text(TEXT, encoding="utf-8")
    cases = {"d.csv": "is a directory, not a data file", "none.csv": "data file not found", "e.csv": "is empty (0 bytes)"}
    for name, says in cases.items():
        with pytest.raises(SourceError) as err:
            check_file(tmp_path / name, "CSV")
        assert str(err.value) == f"{tmp_path / name}: {says}"
    assert check_file(tmp_path / "ok.csv", "CSV") == (len(TEXT.encode()), TEXT.encode())


def scan(path, pieces):
    s = Utf8Scan(path)
    for piece in pieces:
        s.feed(piece)
    s.finish()


# surrogate, overlong forms, beyond U+10FFFF, the largest 3- and 4-byte characters, a lone lead, a lone continuation
TRICKY = [b"\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80", b"\xf5\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xef\xbf\xbf",
          b"\xf0\x9f\x98\x80", b"\xc3", b"\x80", "é".encode()]


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=64) | st.text(max_size=40).map(lambda t: t.encode())
       | st.lists(st.sampled_from(TRICKY) | st.binary(max_size=3), max_size=12).map(b"".join),
       cuts=st.lists(st.integers(0, 64), max_size=6))
def test_utf8_scan_agrees_with_decoding_the_whole_file_wherever_it_is_cut(tmp_path_factory, data, cuts):
    path = tmp_path_factory.mktemp("scan") / "f.csv"
    path.write_bytes(data)
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    pieces = [bytearray(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = 1 + data.count(b"\n", 0, exc.start)
        with pytest.raises(SourceError, match=rf"\(byte 0x{data[exc.start]:02X} at line {line}, column \d+\)"):
            scan(path, pieces)
    else:
        scan(path, pieces)


def test_utf8_scan_names_line_and_column_deep_in_a_file(tmp_path):
    body = "".join(f"SEIZ,Côte d'Ivoire,{i}\n" for i in range(100_000)).encode()
    data = b"IND,AREA,VALUE\n" + body + b"SEIZ,C\xf4te,1\n"
    path = tmp_path / "deep.csv"
    path.write_bytes(data)
    pieces = [data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    with pytest.raises(SourceError, match=r"deep.csv: not UTF-8 text \(byte 0xF4 at line 100002, column 7\); save it as UTF-8$"):
        scan(path, pieces)
    path.write_bytes(data[:-len("\xf4te,1\n")] + "é".encode()[:1])   # a character cut by the end of the file
    with pytest.raises(SourceError, match=r"byte 0xC3 at line 100002, column 7\)"):
        scan(path, [path.read_bytes()])


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_line_longer_than_the_limit_deep_in_a_file_is_named_by_its_number(tmp_path):
    huge = b"x" * (MAX_LINE_BYTES + 1)
    csv = write(tmp_path, "long.csv", b"A,B\n1,2\n3,4\n" + huge + b"\n5,6\n")
    src = open_source(csv, block_size=1 << 20)
    with pytest.raises(SourceError, match=r"long.csv: line 4 is longer than 16 MB: not a CSV file\?$"):
        list(src.batches(["A", "B"]))
    jsonl = write(tmp_path, "long.jsonl", b'{"a": 1}\n{"a": 2}\n' + huge + b"\n")
    src = open_source(jsonl, block_size=1 << 20)
    with pytest.raises(SourceError, match=r"long.jsonl: line 3 is longer than 16 MB: not a JSON Lines file\?$"):
        list(src.batches(["a"]))


def test_json_lines_that_are_not_utf8_past_the_head_are_refused_with_their_line(tmp_path):
    rows = b"".join(b'{"area": "FRA", "value": %d}\n' % i for i in range(10_000))
    path = write(tmp_path, "l.jsonl", rows + '{"area": "Côte", "value": 1}\n'.encode("latin-1"))
    src = open_source(path, block_size=64 << 10)          # the head is clean: met by the streaming reader
    with pytest.raises(SourceError, match=r"not UTF-8 text \(byte 0xF4 at line 10001, column 12\)"):
        list(src.batches(["area", "value"], "value"))


@pytest.mark.parametrize("name, body", [
    ("b.csv", "IND,AREA,VALUE\nSEIZ,Côte d'Ivoire,1\nSEIZ,FRA,2\n"),
    ("b.jsonl", '{"IND": "SEIZ", "AREA": "Côte d\'Ivoire", "VALUE": 1}\n{"IND": "SEIZ", "AREA": "FRA", "VALUE": 2}\n'),
])
def test_a_utf8_byte_order_mark_is_read_as_if_absent(tmp_path, name, body):
    plain = open_source(write(tmp_path, name, body.encode()))
    with_bom = open_source(write(tmp_path, "bom-" + name, b"\xef\xbb\xbf" + body.encode()))
    assert with_bom.columns == plain.columns == ["IND", "AREA", "VALUE"]
    read = [[(b.table.to_pylist(), b.lines.tolist()) for b in s.batches(s.columns, "VALUE")] for s in (plain, with_bom)]
    assert read[0] == read[1] and read[0][0][0][0]["AREA"] == "Côte d'Ivoire"

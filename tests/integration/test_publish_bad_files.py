"""`ioxhub publish` given files that are not UTF-8 data (binary, empty, UTF-16, Latin-1, one huge line, a
directory), run as a user runs it against the real (tansu) broker: one line naming the file and the
fault, a non-zero exit, and nothing sent, checked with a consumer. A UTF-8 byte order mark is accepted."""
from __future__ import annotations

import os
import random

import pytest
from ioxhub_cli import ioxhub
from test_publish import MAPPING, consume, dataset_records

from ioxhub import names
from ioxhub.contracts import codec

pytestmark = pytest.mark.integration

HEADER = "IND,AREA,PARTNER,HS,PERIOD,VALUE,UNIT\n"
ROW = "SEIZ,FRA,DEU,3825,2024,1.5,KG\n"
ROWS = HEADER + ROW + "SEIZ,Côte d'Ivoire,,3825,2024-Q1,2,KG\nSEIZ,ITA,,3825,2024,3,KG\n"
JSONL = '{"IND": "SEIZ", "AREA": "FRA", "HS": "3825", "PERIOD": "2024", "VALUE": 1.5, "UNIT": "KG"}\n' \
        '{"IND": "SEIZ", "AREA": "Côte d\'Ivoire", "HS": "3825", "PERIOD": "2024", "VALUE": 2, "UNIT": "KG"}\n'
XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<message:GenericData xmlns:message="http://www.sdmx.org/resources/'
       'sdmxml/schemas/v2_1/message">\n<!-- Côte d\'Ivoire -->\n</message:GenericData>\n')


@pytest.fixture(scope="module")
def env(provisioned_settings, tmp_path_factory):
    """The session hub's settings (exported by the stack fixture) for the `ioxhub` subprocess."""
    mapping = tmp_path_factory.mktemp("mapping") / "seiz.mapping.yaml"
    mapping.write_text("".join(f"{k}: {v}\n" for k, v in MAPPING.items()))
    return {**os.environ, "IOXHUB_TEST_MAPPING": str(mapping)}


def publish(env, dataset: str, path, *extra: str):
    return ioxhub(env, "publish", "dataset", "--org", "WCO", "--dataset", dataset,
                  "--mapping", env["IOXHUB_TEST_MAPPING"], *extra, str(path))


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0].removeprefix("error: ")


def bad_files(tmp_path) -> list[tuple[str, object, str]]:
    """(dataset id, path, the message expected after the path) of each bad input."""
    rnd = random.Random(7)
    cases = []

    def add(dataset, name, data, says):
        path = tmp_path / name
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
        cases.append((dataset, path, says))

    for ext, text in (("csv", ROWS), ("jsonl", JSONL), ("xml", XML)):
        kind = {"csv": "CSV", "jsonl": "JSON Lines", "xml": None}[ext]
        tag = f"BAD-{ext.upper()}"
        add(f"{tag}-BIN", f"bin.{ext}", bytes(rnd.randrange(256) for _ in range(20_000)), "looks binary (NUL bytes")
        add(f"{tag}-EMPTY", f"empty.{ext}", b"", "is empty (0 bytes)")
        add(f"{tag}-U16", f"utf16.{ext}", text.encode("utf-16"), "is UTF-16 (BOM FF FE); save it as UTF-8")
        before = text[:text.index("ô")]
        add(f"{tag}-L1", f"latin1.{ext}", text.encode("latin-1"), f"not UTF-8 text (byte 0xF4 at line "
            f"{before.count(chr(10)) + 1}, column {len(before.rsplit(chr(10), 1)[-1]) + 1}); save it as UTF-8")
        add(f"{tag}-DIR", f"dir.{ext}", None, "is a directory, not a data file")
        if kind:
            add(f"{tag}-LINE", f"oneline.{ext}", b"x" * (50 << 20), f"line 1 is longer than 64 KB: not a {kind} file?")
    # Latin-1 at line 900,001: found by the pass that hashes the file, before any chunk is sent.
    add("BAD-CSV-DEEP", "deep.csv", (HEADER + ROW * 900_000).encode() + "SEIZ,Côte,,3825,2024,2,KG\n".encode("latin-1"),
        "not UTF-8 text (byte 0xF4 at line 900002, column 7); save it as UTF-8")
    return cases


def test_bad_files_are_one_line_and_nothing_is_sent(env, provisioned_settings, tmp_path):
    cases = bad_files(tmp_path)
    for dataset, path, says in cases:
        message = one_line_error(publish(env, dataset, path))
        assert message.startswith(f"{path}: {says}"), (dataset, message)
    keys = {f"WCO/{dataset}".encode() for dataset, _, _ in cases}
    sent = [r.key for r in consume(provisioned_settings, names.datasets_topic("WCO")) if r.key in keys]
    assert sent == []


def test_a_bad_policy_file_is_one_line_and_nothing_is_sent(env, provisioned_settings, tmp_path):
    topic = names.policies_topic("ICC")
    before = len(consume(provisioned_settings, topic))
    policy = "instrument_id: ICC-X\nissuing_org: ICC\ntitle: Côte\n"
    cases = [("dir.yaml", None, "is a directory, not a data file"), ("empty.yaml", b"", "is empty (0 bytes)"),
             ("u16.yaml", policy.encode("utf-16"), "is UTF-16 (BOM FF FE); save it as UTF-8"),
             ("l1.yaml", policy.encode("latin-1"), "not UTF-8 text (byte 0xF4 at line 3, column 9)"),
             ("bin.yaml", bytes(range(256)) * 8, "looks binary (NUL bytes, the first at byte 0)")]
    for name, data, says in cases:
        path = tmp_path / name
        path.mkdir() if data is None else path.write_bytes(data)
        message = one_line_error(ioxhub(env, "publish", "policy", "--org", "ICC", str(path)))
        assert message.startswith(f"{path}: {says}"), message
    assert len(consume(provisioned_settings, topic)) == before


def observations(records) -> list[tuple]:
    """Every observation of the chunks, string indexes resolved, with its source line."""
    out = []
    for r in records:
        d = codec.decode(r.value)
        if d.name != "dataset_chunk":
            continue
        c = d.record
        s = c["strings"]
        for i in range(len(c["value"])):
            out.append(tuple(s[c[f][i]] if c[f][i] >= 0 else None
                             for f in ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit"))
                       + (c["value"][i], c["source_line"][i]))
    return out


def test_a_csv_with_a_utf8_bom_publishes_the_same_observations(env, provisioned_settings, tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(ROWS, encoding="utf-8")
    excel = tmp_path / "excel.csv"
    excel.write_text(ROWS, encoding="utf-8-sig")           # what Excel's "CSV UTF-8" writes
    assert excel.read_bytes()[:3] == b"\xef\xbb\xbf"
    for dataset, path in (("BOM-PLAIN", plain), ("BOM-EXCEL", excel)):
        result = publish(env, dataset, path)
        assert result.returncode == 0, result.stderr
    a = dataset_records(provisioned_settings, "WCO", "BOM-PLAIN")
    b = dataset_records(provisioned_settings, "WCO", "BOM-EXCEL")
    assert [codec.decode(r.value).name for r in b] == ["dataset_chunk", "release_manifest"]
    assert observations(b) == observations(a) and len(observations(a)) == 3
    assert observations(b)[1][1] == "Côte d'Ivoire"


def test_a_fault_met_after_chunks_went_out_says_the_release_is_not_visible(env, provisioned_settings, tmp_path):
    """A line of 17 MB after 900,000 good rows (and, with --release-id, which skips the hashing pass, a
    Latin-1 byte there): chunks went out before the reader met it; no manifest follows, so ingest never
    applies the release, and the error says so."""
    rows = (HEADER + ROW * 900_000).encode()
    long_line = tmp_path / "long.csv"
    long_line.write_bytes(rows + b"x" * (17 << 20) + b"\n" + ROW.encode())
    latin1 = tmp_path / "named.csv"
    latin1.write_bytes(rows + "SEIZ,Côte,,3825,2024,2,KG\n".encode("latin-1"))
    cases = [("CUT-LONG", long_line, (), "line 900002 is longer than 16 MB: not a CSV file?"),
             ("CUT-L1", latin1, ("--release-id", "named-1"), "not UTF-8 text (byte 0xF4 at line 900002, column 7)")]
    for dataset, path, extra, says in cases:
        message = one_line_error(publish(env, dataset, path, *extra))
        assert message.startswith(f"{path}: {says}; "), message
        assert "chunk(s) of release" in message and "not the manifest" in message and "never applies" in message
        kinds = [codec.decode(r.value).name for r in dataset_records(provisioned_settings, "WCO", dataset)]
        assert kinds and set(kinds) == {"dataset_chunk"}, kinds      # chunks, and no manifest
        assert f"; {len(kinds)} chunk(s) of release " in message      # as many as the consumer finds

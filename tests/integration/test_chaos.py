"""bench/chaos.py in small: SIGKILL the ingest and the S3 server during an ingest of the sample feeds,
restart it, rerun: the hub ends equal to one that saw no fault.

Real servers (SeaweedFS, tansu in durable mode on it), real ingest and derivation subprocesses; a
small workload (the bulk file at a small scale) and releases split over runs of 8 records, so faults
also land while releases wait in staging/.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chaos  # noqa: E402

pytestmark = pytest.mark.integration

FAST = {"IOXHUB_INGEST_IDLE_MS": "700"}


def test_killed_ingest_and_s3_lose_and_double_nothing(tmp_path):
    work = chaos.build_workload(tmp_path / "samples", 0.1)
    ref, reference, _ = chaos.run_trial(0, work, tmp_path, [], None, **FAST)
    assert ref.clean, (ref.problems, ref.log)
    assert ref.published_events and reference["harmonized/observations"].rows > 0

    faults = [chaos.Fault("ingest", 1.5, 0.0), chaos.Fault("s3", 1.0, 0.3)]
    res, _, _ = chaos.run_trial(1, work, tmp_path, faults, 8, reference, **FAST)

    assert res.kills == Counter(ingest=1, s3=1), res.log
    assert (res.lost, res.duplicated, res.unaccounted) == (0, 0, 0), res.log
    assert not res.mismatches and not res.problems, (res.mismatches, res.problems, res.log)
    servers = [p.info["cmdline"][:2] for p in psutil.process_iter(["cmdline"])
               if str(tmp_path) in " ".join(p.info["cmdline"] or []) and "guard" not in " ".join(p.info["cmdline"])]
    assert not servers, f"left running: {servers}"

"""JSON log lines (context fields, tracebacks, masked secrets)."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

from ioxhub.logs import JsonFormatter, configure, with_context
from ioxhub.settings import load_settings


def test_json_line_carries_the_context_and_masks_secrets():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(["s3cr3t-value"]))
    logger = logging.getLogger("ioxhub.test-json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log = with_context(logger, run_id="r1", org="WCO", dataset=None)
        log.bind(release_id="rel-1").info("applied with key s3cr3t-value", extra={"topic": "t", "partition": 2, "offset": 7})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["message"] == "applied with key ***" and first["level"] == "INFO"
    assert {k: first[k] for k in ("run_id", "org", "release_id", "topic", "partition", "offset")} == \
        {"run_id": "r1", "org": "WCO", "release_id": "rel-1", "topic": "t", "partition": 2, "offset": 7}
    assert "dataset" not in first and "release_id" not in second
    assert second["level"] == "ERROR" and "ValueError: boom" in second["error"]


def test_text_format_installs_nothing():
    root = logging.getLogger()
    before = list(root.handlers)
    configure(load_settings({}))
    assert root.handlers == before


def test_json_format_is_one_object_a_line_in_a_fresh_process(tmp_path):
    code = ("import logging; from ioxhub.logs import configure; from ioxhub.settings import load_settings;"
            "configure(load_settings()); logging.getLogger('ioxhub.ingest').info('hello', extra={'org': 'WHO'});"
            "logging.getLogger('ioxhub.ingest').debug('not shown')")
    env = {**os.environ, "IOXHUB_LOG_FORMAT": "json", "IOXHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert json.loads(lines[0])["org"] == "WHO"


"""`ioxhub status` on a hub whose Airflow is not running: the event triggers are reported not live, with
the reason, instead of failing the whole status (live triggers: tests/integration/test_event_ingest.py)."""
from __future__ import annotations

import dataclasses

from ioxhub.settings import Settings
from ioxhub.stack.process import free_ports
from ioxhub.status import trigger_liveness


def test_no_airflow_means_not_live_and_says_why(tmp_path):
    settings = dataclasses.replace(Settings(), data_dir=tmp_path, airflow_port=free_ports(1)[0])
    found = trigger_liveness(settings)
    assert found["live"] is False and found["watchers"] == {}
    assert found["triggerer"]["status"].startswith("airflow not reachable: URLError: ")

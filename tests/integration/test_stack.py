"""The local stack for real: the session fixtures, and `ioxhub stack up | down | status | logs` as a user runs it."""
from __future__ import annotations

import io
import uuid

import pytest
from minio.error import S3Error

from ioxhub.kafka import make_admin, make_consumer, make_producer
from ioxhub.s3 import make_client

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------ fixtures
def test_fixture_stack_serves_kafka_and_s3(stack_settings):
    topic = f"stack-fixture-{uuid.uuid4().hex[:8]}"
    producer = make_producer(stack_settings)
    producer.send(topic, key=b"k", value=b"hello", headers=[("h", b"1")]).get(timeout=10)
    producer.close()
    consumer = make_consumer(None, stack_settings, consumer_timeout_ms=5000)
    from kafka import TopicPartition
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = [(m.key, m.value, m.headers) for m in consumer]
    consumer.close()
    assert got == [(b"k", b"hello", [("h", b"1")])]

    hub = make_client(stack_settings)
    key = f"tests/{uuid.uuid4().hex}"
    hub.put_object(stack_settings.bucket, key, io.BytesIO(b"payload"), 7)
    response = hub.get_object(stack_settings.bucket, key)
    assert response.read() == b"payload"
    response.close()
    hub.remove_object(stack_settings.bucket, key)


def test_fixture_hub_identity_is_limited_to_the_hub_bucket(stack_settings):
    hub = make_client(stack_settings)
    with pytest.raises(S3Error) as denied:
        hub.put_object(stack_settings.broker_bucket, "intruder", io.BytesIO(b"x"), 1)
    assert denied.value.code == "AccessDenied"
    with pytest.raises(S3Error) as denied:
        hub.make_bucket(f"other-{uuid.uuid4().hex[:8]}")
    assert denied.value.code == "AccessDenied"
    admin = make_client(stack_settings, admin=True)
    assert admin.bucket_exists(stack_settings.bucket) and admin.bucket_exists(stack_settings.broker_bucket)


def test_fixture_kafka_metadata(stack_settings):
    admin = make_admin(stack_settings)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


PROBE_DAG = """
import io
from airflow.sdk import dag, task


@dag(dag_id="DAG_ID", schedule=None, catchup=False)
def probe():
    @task
    def write() -> str:
        from ioxhub.s3 import make_client
        from ioxhub.settings import get_settings
        s = get_settings()
        make_client(s).put_object(s.bucket, "KEY", io.BytesIO(b"from-airflow"), 12)
        return s.kafka_bootstrap

    write()


probe_dag = probe()
"""


@pytest.mark.airflow
def test_airflow_dag_test_task_sees_the_stack(stack_settings, airflow_db, tmp_path, monkeypatch):
    """dag.test() runs a real task here, and the task reaches the fixture's S3 through get_settings()."""
    import importlib.util
    import json

    dag_id, key = f"stack_probe_{uuid.uuid4().hex[:8]}", f"tests/airflow-{uuid.uuid4().hex}"
    (tmp_path / "probe_dag.py").write_text(PROBE_DAG.replace("DAG_ID", dag_id).replace("KEY", key))
    # dag.test() serializes the DAG from a bundle: add this test's folder as a second bundle.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {"name": "stack-tests", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(tmp_path)}},
    ]))
    spec = importlib.util.spec_from_file_location("probe_dag", tmp_path / "probe_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.probe_dag.test()
    assert run.state == "success"
    hub = make_client(stack_settings)
    response = hub.get_object(stack_settings.bucket, key)
    assert response.read() == b"from-airflow"
    response.close()

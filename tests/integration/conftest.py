"""Integration fixtures on top of `stack_settings` (tests/conftest.py): the stack, provisioned once."""
from __future__ import annotations

import pytest

from ioxhub.provision.apply import provision
from ioxhub.provision.plan import ProvisionReport
from ioxhub.settings import Settings


@pytest.fixture(scope="session")
def first_provision(stack_settings) -> tuple[Settings, ProvisionReport]:
    """`ioxhub provision` run once against the session's stack, with its report."""
    return stack_settings, provision(stack_settings)


@pytest.fixture(scope="session")
def provisioned_settings(first_provision) -> Settings:
    """The session stack with infra/orgs.yaml applied: every org topic, the dead-letter topic, the bucket,
    and the storage role identities (analyst keys in settings.local_secrets_file)."""
    return first_provision[0]


@pytest.fixture(scope="session")
def run_dag(airflow_db):
    """Run a hub DAG with real Airflow (`dag.test()`): returns (run state, {task: state}, the run's counts
    as recorded in the catalog)."""
    from airflow.dag_processing.dagbag import DagBag

    from ioxhub.catalog import Catalog
    from ioxhub.settings import get_settings
    from ioxhub.storage import ObjectStore

    bag = DagBag(str(get_settings().dags_dir))
    assert not bag.import_errors, bag.import_errors

    def run(dag_id: str, **conf):
        # Pass every param you set explicitly: a DAG object keeps the conf of its previous test run.
        dag_run = bag.get_dag(dag_id).test(run_conf=conf or None)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        return str(dag_run.state), states, Catalog(ObjectStore()).last_runs().get(dag_id)

    return run

"""Integration fixtures on top of `stack_settings` (tests/conftest.py): the stack, provisioned once."""
from __future__ import annotations

import pytest

from ioxhub.provision import ProvisionReport, provision
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

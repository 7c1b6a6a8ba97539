"""README.md stays true: its configuration table is the settings' own, and its commands exist."""

from ioxhub.settings import PROJECT_ROOT, reference_markdown

README = (PROJECT_ROOT / "README.md").read_text()


def test_configuration_table_matches_the_settings():
    assert reference_markdown() in README


def test_the_two_commands_are_the_ones_ci_runs():
    assert "bash infra/bootstrap.sh && .venv/bin/ioxhub demo" in README
    assert "bash infra/bootstrap.sh && .venv/bin/pytest" in README
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "infra/bootstrap.sh" in ci and ".venv/bin/pytest" in ci

"""Settings from the environment and the TOML file: values parsed and checked, a bad one refused in one
line naming the variable (or file and key), the value and what was expected."""
from __future__ import annotations

from pathlib import Path

import pytest

from ioxhub.settings import Settings, SettingsError, load_settings


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"IOXHUB_DATA_DIR": str(tmp_path / "data")}


def test_values_are_parsed_from_the_environment(env):
    s = load_settings(env | {"IOXHUB_S3_SECURE": "Yes", "IOXHUB_AIRFLOW_PORT": " 8080 ", "IOXHUB_TASK_RETRY_BACKOFF": "1",
                             "IOXHUB_TASK_TIMEOUT_MINUTES": "0.05", "IOXHUB_REQUIRE_SIGNATURES": "off",
                             "IOXHUB_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "IOXHUB_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                             "IOXHUB_STAGING_MAX_AGE_HOURS": "0", "IOXHUB_AIRFLOW_HOME": ""})
    assert (s.s3_secure, s.airflow_port, s.task_retry_backoff, s.task_timeout_minutes, s.require_signatures) == \
        (True, 8080, 1.0, 0.05, False)
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism, s.staging_max_age_hours, s.airflow_home) == \
        ("SASL_PLAINTEXT", "SCRAM-SHA-512", 0.0, None)
    assert s.data_dir == Path(env["IOXHUB_DATA_DIR"]).resolve()


@pytest.mark.parametrize("name, value, expected", [
    ("S3_SECURE", "maybe", "not a boolean"),
    ("AIRFLOW_PORT", "70000", "not a port number from 1 to 65535"),
    ("S3_FILER_PORT", "0", "not a port number from 1 to 65535"),
    ("INGEST_IDLE_MS", "1.5", "not a whole number"),
    ("INGEST_MAX_RECORDS", "0", "not a number above 0"),
    ("TASK_RETRIES", "-1", "not a number from 0 up"),
    ("TASK_RETRY_BACKOFF", "0.5", "not a number from 1 up"),
    ("TASK_TIMEOUT_MINUTES", "nan", "not a finite number"),
    ("STAGING_MAX_AGE_HOURS", "three days", "not a finite number"),
    ("KAFKA_SECURITY_PROTOCOL", "SSL", "not one of PLAINTEXT, SASL_PLAINTEXT, SASL_SSL"),
    ("KAFKA_SASL_MECHANISM", "PLAIN", "not one of SCRAM-SHA-256, SCRAM-SHA-512"),
])
def test_a_bad_value_is_refused_in_one_line(env, name, value, expected):
    with pytest.raises(SettingsError) as info:
        load_settings(env | {f"IOXHUB_{name}": value})
    message = str(info.value)
    assert message.startswith(f"IOXHUB_{name} = {value!r}: {expected}") and "\n" not in message


def test_the_toml_file_below_the_environment(env, tmp_path):
    config = tmp_path / "ioxhub.toml"
    config.write_text('bucket = "from-file"\nairflow_port = 18099\ns3_secure = true\nstaging_max_age_hours = 24\n')
    s = load_settings(env | {"IOXHUB_AIRFLOW_PORT": "18100"}, config_file=config)
    assert (s.bucket, s.airflow_port, s.s3_secure, s.staging_max_age_hours) == ("from-file", 18100, True, 24.0)
    assert load_settings(env | {"IOXHUB_CONFIG": str(config)}).bucket == "from-file"


@pytest.mark.parametrize("line, expected", [
    ("airflow_port = 1.5", "airflow_port = 1.5: not a whole number"),
    ('s3_secure = "sometimes"', "s3_secure = 'sometimes': not a boolean"),
    ("bucket = 7", "bucket = 7: not a string"),
    ("ingest_max_records = 0", "ingest_max_records = 0: not a number above 0"),
])
def test_a_bad_value_in_the_toml_file_names_file_and_key(env, tmp_path, line, expected):
    config = tmp_path / "ioxhub.toml"
    config.write_text(line + "\n")
    with pytest.raises(SettingsError, match=f"^{config}: ") as info:
        load_settings(env, config_file=config)
    assert expected in str(info.value)


def test_unknown_keys_and_missing_or_malformed_files_are_refused(env, tmp_path):
    config = tmp_path / "ioxhub.toml"
    config.write_text("bucket_name = 'x'\n")
    with pytest.raises(SettingsError, match="unknown setting.*bucket_name"):
        load_settings(env, config_file=config)
    config.write_text("bucket = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(env, config_file=config)
    with pytest.raises(SettingsError, match="IOXHUB_CONFIG: settings file .* does not exist"):
        load_settings(env | {"IOXHUB_CONFIG": str(tmp_path / "absent.toml")})


def test_defaults_pass_their_own_checks(env):
    assert load_settings(env) == Settings(data_dir=Path(env["IOXHUB_DATA_DIR"]).resolve())

"""Settings come from CLAIMS_* variables; a typo is an error, not a silent default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import Settings, load_settings, unknown_variables


def test_defaults_name_the_contract_topics() -> None:
    settings = Settings()
    assert (settings.input_topic, settings.adjudicated_topic, settings.pended_topic, settings.dead_letter_topic) == (
        "claims.submitted",
        "claims.adjudicated",
        "claims.pended",
        "claims.dead-letter",
    )


def test_kafka_bootstrap_servers_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "a:9092, b:9093")
    settings = load_settings()
    assert settings.broker_list == ["a:9092", "b:9093"]
    assert settings.broker_url == "kafka://a:9092;b:9093"


def test_an_unknown_claims_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_INPUT_TOPICS", "typo")
    assert unknown_variables() == ["CLAIMS_INPUT_TOPICS"]
    with pytest.raises(ValueError, match="CLAIMS_INPUT_TOPICS"):
        load_settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().input_topic = "other"  # type: ignore[misc]


def test_sasl_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="SASL needs"):
        load_settings()


def test_the_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CLAIMS_SECURITY_PROTOCOL": "SASL_SSL",
        "CLAIMS_SASL_MECHANISM": "SCRAM-SHA-512",
        "CLAIMS_SASL_USERNAME": "svc",
        "CLAIMS_SASL_PASSWORD": "hunter2",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "hunter2"

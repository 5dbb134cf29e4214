"""Settings come from CLAIMS_* variables; a typo is an error, not a silent default."""

from __future__ import annotations

import asyncio
import os

import pytest
from pydantic import ValidationError

from worker.connection import KafkaConnection
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
    assert KafkaConnection.from_settings(settings).servers == ("a:9092", "b:9093")


def test_settings_given_to_a_child_process_come_back_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        bootstrap_servers="a:9092",
        group_id="g",
        partitions=3,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="svc",
        sasl_password="s3cret",  # type: ignore[arg-type]
        web_port=0,
    )
    env = settings.environment()
    assert "CLAIMS_INPUT_TOPIC" not in env  # defaults are left to the child
    for name in list(os.environ):
        if name.startswith("CLAIMS_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


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


@pytest.mark.parametrize(("kind", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_event_loop_is_the_one_the_settings_name(kind: str, module: str) -> None:
    from worker.stream.app import new_event_loop

    loop = new_event_loop(kind)
    try:
        assert type(loop).__module__.split(".")[0] == module
        assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
    finally:
        loop.close()
    assert Settings().event_loop == "uvloop"

"""What can be proved about the deployment files without a Docker engine or a cluster.

The image cannot be built nor the compose stack started here (no Docker engine); hadolint and
kubernetes-validate run in `make deploy-check`. These tests check the files' schemas and that
they agree with each other and with the worker's settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from worker.settings import Settings, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_SCHEMA = Path(os.environ.get("COMPOSE_SCHEMA", ROOT / ".venv" / "share" / "compose-spec.json"))


def k8s(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if doc]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def settings_from(env: dict[str, str]) -> Settings:
    assert unknown_variables(env) == [], unknown_variables(env)
    return Settings(**{name.removeprefix("CLAIMS_").lower(): value for name, value in env.items()})


class TestCompose:
    def validator(self) -> jsonschema.Draft201909Validator:
        assert COMPOSE_SCHEMA.exists(), f"{COMPOSE_SCHEMA} is missing: run `make deploy-check`"
        # The schema names draft 2019-09 with a trailing '#', which jsonschema does not look up.
        return jsonschema.Draft201909Validator(json.loads(COMPOSE_SCHEMA.read_text()))

    def test_the_compose_file_follows_the_compose_specification(self) -> None:
        self.validator().validate(compose())

    def test_the_schema_refuses_a_broken_file(self) -> None:
        broken = compose()
        broken["services"]["worker"]["deploy"]["replicas"] = "two"
        with pytest.raises(jsonschema.ValidationError):
            self.validator().validate(broken)

    def test_two_workers_start_after_the_topics_exist(self) -> None:
        services = compose()["services"]
        assert services["worker"]["deploy"]["replicas"] == 2
        assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert services["topics"]["command"] == ["topics", "apply"]
        assert services["producer"]["command"][:2] == ["samples", "publish"]
        assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper

    def test_every_service_setting_is_a_known_setting(self) -> None:
        for name in ("topics", "worker", "producer"):
            settings_from(compose()["services"][name]["environment"])


class TestKubernetes:
    def test_the_config_map_holds_valid_settings_and_no_secrets(self) -> None:
        (config_map,) = k8s("configmap.yaml")
        data = config_map["data"]
        assert not {"CLAIMS_SASL_PASSWORD", "CLAIMS_SASL_USERNAME"} & set(data)
        settings_from({**data, "CLAIMS_SASL_USERNAME": "from-secret", "CLAIMS_SASL_PASSWORD": "from-secret"})

    def test_no_secret_values_are_in_the_repository(self) -> None:
        for path in DEPLOY.rglob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                assert not (doc and doc.get("kind") == "Secret"), path
            assert not re.search(
                r"(?i)password\s*[:=]\s*['\"]?[^'\"\s{]+", path.read_text().replace("key: password", "")
            ), path

    def test_the_pod_runs_locked_down(self) -> None:
        (deployment,) = k8s("deployment.yaml")
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"]["memory"]

    def test_the_worker_stops_itself_before_the_pod_is_killed(self) -> None:
        (deployment,) = k8s("deployment.yaml")
        (config_map,) = k8s("configmap.yaml")
        grace = float(config_map["data"]["CLAIMS_SHUTDOWN_GRACE_SECONDS"])
        assert grace + 5 <= deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    def test_the_autoscaler_is_capped_at_the_partition_count_and_watches_our_group(self) -> None:
        scaled, auth = k8s("scaledobject.yaml")
        (config_map,) = k8s("configmap.yaml")
        (deployment,) = k8s("deployment.yaml")
        data = config_map["data"]
        assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert scaled["spec"]["maxReplicaCount"] == int(data["CLAIMS_PARTITIONS"])
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == data["CLAIMS_GROUP_ID"]
        assert trigger["metadata"]["topic"] == Settings().input_topic
        assert trigger["metadata"]["bootstrapServers"] == data["CLAIMS_BOOTSTRAP_SERVERS"]
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]

    def test_kubernetes_validate_refuses_a_broken_manifest(self, tmp_path: Path) -> None:
        (deployment,) = k8s("deployment.yaml")
        deployment["spec"]["replicas"] = "two"
        broken = tmp_path / "broken.yaml"
        broken.write_text(yaml.safe_dump(deployment))
        validator = Path(sys.executable).with_name("kubernetes-validate")
        done = subprocess.run([str(validator), "--strict", "--quiet", str(broken)], capture_output=True, check=False)
        assert done.returncode != 0


class TestImage:
    TEXT = (DEPLOY / "Dockerfile").read_text()

    def test_it_is_multi_stage_and_runs_as_a_numeric_non_root_user(self) -> None:
        assert len(re.findall(r"^FROM ", self.TEXT, re.MULTILINE)) == 2
        user = re.findall(r"^USER (\S+)", self.TEXT, re.MULTILINE)
        assert user == ["10001:10001"]

    def test_its_healthcheck_asks_for_readiness(self) -> None:
        assert "HEALTHCHECK" in self.TEXT
        assert "/readyz" in self.TEXT

    def test_it_installs_pinned_wheels_only(self) -> None:
        assert "pip install --only-binary=:all: -r requirements/runtime.txt" in self.TEXT
        assert "build-essential" not in self.TEXT
        assert "gcc" not in self.TEXT


def test_the_settings_reference_in_the_docs_is_current() -> None:
    from worker.dev.docs import render

    text = (ROOT / "docs" / "operations.md").read_text()
    assert render(text) == text, "docs/operations.md is stale: run `make docs`"

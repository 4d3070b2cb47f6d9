"""The example worker configuration stays loadable, and config errors name their field."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from api.settings import GatewaySettings
from core.settings import GennakerSettings
from core.temporal import settings_target, temporal_target
from workers.config import ConfigError, WorkerConfig, load_worker_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gennaker.yaml"


def test_example_config_loads_with_every_section() -> None:
    config = load_worker_config(EXAMPLE)
    assert [a.queue for a in config.kubernetes] == ["k8s-staging"]
    assert [r.queue for r in config.registries] == ["registry-local"]
    assert config.jenkins[0].name == "ci"
    assert config.notifications.email is not None and config.notifications.email.sender.startswith("Gennaker")


def test_duplicate_account_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("kubernetes:\n  - {name: prod, kubeconfig: /k}\n  - {name: prod, kubeconfig: /k2}\n")
    with pytest.raises(ConfigError, match="duplicate account names prod"):
        load_worker_config(path)


def test_artifacts_obey_the_one_egress_policy_and_the_old_key_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("egress: {allow_hosts: [git.internal]}\n")
    with caplog.at_level("WARNING", logger="workers.config"):
        config = load_worker_config(path)
    assert config.artifact_settings().egress == config.egress
    assert "git.internal" in config.artifact_settings().egress.allow_hosts
    assert "deprecated" not in caplog.text

    path.write_text("egress: {allow_hosts: [git.internal]}\nartifacts: {egress: {allow_hosts: [old.internal]}}\n")
    with caplog.at_level("WARNING", logger="workers.config"):
        config = load_worker_config(path)
    assert config.artifact_settings().egress.allow_hosts == ["old.internal"]  # as before: no fetch changes
    assert "artifacts.egress is deprecated" in caplog.text


def test_unknown_keys_are_refused_with_their_name(tmp_path: Path) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("temporal_adress: localhost:7233\n")
    with pytest.raises(ConfigError, match="temporal_adress"):
        load_worker_config(path)


def test_environment_wins_over_yaml_and_arguments_win_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("task-queue: from-yaml\ndatabase_url: sqlite:///yaml.db\nactivity_threads: 7\n")
    monkeypatch.setenv("GENNAKER_TASK_QUEUE", "from-env")
    config = load_worker_config(path)
    assert (config.task_queue, config.database_url, config.activity_threads) == ("from-env", "sqlite:///yaml.db", 7)
    assert load_worker_config(path, task_queue="from-flag").task_queue == "from-flag"


def test_gateway_and_worker_read_the_same_file_and_share_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("task_queue: shared\ntemporal_ui_url: http://ui:8080\nkubernetes: []\napi_port: 9000\n")
    gateway = GatewaySettings.load(path)
    assert (gateway.task_queue, gateway.temporal_ui_url, gateway.api_port) == ("shared", "http://ui:8080", 9000)
    # The worker refuses keys it does not know, so a gateway-only key in its file is named.
    with pytest.raises(ConfigError, match="api_port"):
        load_worker_config(path)
    assert set(GennakerSettings.model_fields) <= set(GatewaySettings.model_fields) & set(WorkerConfig.model_fields)


def test_config_file_from_the_environment_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("health_interval_seconds: 3\n")
    monkeypatch.setenv("GENNAKER_CONFIG", str(path))
    assert load_worker_config().health_interval_seconds == 3
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_worker_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_worker_config(tmp_path / "list.yaml")


TLS_PROFILE = """
[profile.cloud]
address = "my-ns.a1b2c.tmprl.cloud:7233"
namespace = "my-ns.a1b2c"

[profile.cloud.tls]
client_cert_path = "{cert}"
client_key_path = "{key}"
server_name = "my-ns.a1b2c.tmprl.cloud"

[profile.keyed]
address = "us-east-1.aws.api.temporal.io:7233"
namespace = "my-ns.a1b2c"
api_key = "secret-api-key"
"""


def test_temporal_connection_comes_from_the_standard_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("CERT")
    key.write_text("KEY")
    config = tmp_path / "temporal.toml"
    config.write_text(TLS_PROFILE.format(cert=cert, key=key))
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))

    mtls = temporal_target(profile="cloud")
    assert (mtls.address, mtls.namespace) == ("my-ns.a1b2c.tmprl.cloud:7233", "my-ns.a1b2c")
    tls = mtls.options["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.domain) == (b"CERT", b"KEY", "my-ns.a1b2c.tmprl.cloud")

    keyed = temporal_target(profile="keyed")
    assert keyed.options["api_key"] == "secret-api-key" and keyed.options["tls"] is True

    # Our settings override the profile's address and namespace, and TEMPORAL_* env overrides the file.
    monkeypatch.setenv("GENNAKER_TEMPORAL_PROFILE", "keyed")
    monkeypatch.setenv("GENNAKER_TEMPORAL_NAMESPACE", "other")
    target = settings_target(GennakerSettings())
    assert (target.address, target.namespace) == ("us-east-1.aws.api.temporal.io:7233", "other")
    monkeypatch.setenv("TEMPORAL_API_KEY", "from-env")
    assert temporal_target(profile="keyed").options["api_key"] == "from-env"


def test_without_a_profile_the_local_dev_server_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    target = temporal_target()
    assert (target.address, target.namespace, target.uses_tls) == ("127.0.0.1:7233", "default", False)

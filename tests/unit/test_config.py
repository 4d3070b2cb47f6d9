"""The example worker configuration stays loadable, and config errors name their field."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.config import ConfigError, load_worker_config

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


def test_unknown_keys_are_refused_with_their_name(tmp_path: Path) -> None:
    path = tmp_path / "gennaker.yaml"
    path.write_text("temporal_adress: localhost:7233\n")
    with pytest.raises(ConfigError, match="temporal_adress"):
        load_worker_config(path)

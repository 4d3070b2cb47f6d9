"""`application:` naming another application is answered at submission, through the gateway with
authentication on: 403 naming the field and the rule, unless the submitter may EXECUTE it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.test_auth import Tokens, api, bearer, oidc_key, settings, tokens  # noqa: F401

INLINE_OTHER = {"application": "other", "name": "child", "stages": [{"refId": "w", "type": "wait", "waitTime": 0}]}


def with_child(**fields: Any) -> dict[str, Any]:
    return {"application": "authz", "name": "parent", "stages": [{"refId": "c", "type": "pipeline", **fields}]}


async def test_inline_child_of_another_application_is_refused(api: httpx.AsyncClient, tokens: Tokens) -> None:  # noqa: F811
    response = await api.post(
        "/executions", json={"pipeline": with_child(pipelineConfig=INLINE_OTHER)}, headers=bearer(tokens.deployer)
    )
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["field"] == "stages[c].pipelineConfig.application"
    assert "names application other, which dan may not EXECUTE" in error["message"]


async def test_deploy_for_another_application_is_refused(api: httpx.AsyncClient, tokens: Tokens) -> None:  # noqa: F811
    deploy = {
        "refId": "d",
        "type": "deploy",
        "account": "nowhere",
        "application": "other",
        "container": {"image": "shop/web:1.0"},
        "stageEnabled": {"expression": "false"},
    }
    pipeline = {"application": "authz", "name": "evil", "stages": [deploy]}
    response = await api.post("/executions", json={"pipeline": pipeline}, headers=bearer(tokens.deployer))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["field"] == "stages[d].application"


async def test_an_admin_may_run_another_applications_child(api: httpx.AsyncClient, tokens: Tokens) -> None:  # noqa: F811
    response = await api.post(
        "/executions", json={"pipeline": with_child(pipelineConfig=INLINE_OTHER)}, headers=bearer(tokens.root)
    )
    assert response.status_code == 202, response.text

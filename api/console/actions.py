"""Cluster-view actions as inline pipelines, started through the same code as `POST /executions`.

So a console click is durable (a Temporal workflow), authorised (EXECUTE on the application, and
whatever the stage checks about the account) and audited (its trigger records who clicked) like
any other run, and shows up in the application's executions as `console-<action>`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.errors import ApiError

# Kubernetes names (RFC 1123 labels / subdomains); also what keeps hostile input out of the specs.
LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SERVER_GROUP = r"^[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?$"
MAX_REPLICAS = 1000

Action = Literal["resize", "enable", "disable", "destroy", "rollback"]
ACTIONS: tuple[Action, ...] = ("resize", "enable", "disable", "destroy", "rollback")


class ServerGroupAction(BaseModel):
    """What a cluster-view form posts (besides the CSRF token)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    account: str = Field(pattern=LABEL)
    namespace: str = Field(pattern=LABEL)
    serverGroup: str = Field(pattern=SERVER_GROUP, description="The group acted on (rollback: the current one)")
    desired: int | None = Field(default=None, ge=0, le=MAX_REPLICAS, description="resize only")
    restoreServerGroup: str | None = Field(default=None, pattern=SERVER_GROUP, description="rollback only")

    @model_validator(mode="after")
    def _distinct(self) -> ServerGroupAction:
        if self.restoreServerGroup is not None and self.restoreServerGroup == self.serverGroup:
            raise ValueError("restoreServerGroup must differ from serverGroup")
        return self


def _belongs(application: str, server_group: str) -> bool:
    """A server group is `<cluster>-vNNN` with cluster `app[-stack[-detail]]` (DESIGN.md §4)."""
    return server_group == application or server_group.startswith(application + "-")


def action_pipeline(application: str, action: Action, form: ServerGroupAction) -> dict[str, Any]:
    """The inline pipeline for `action`. Every action is one stage, except a rollback, which is
    Spinnaker's explicit rollback: enable the restored group, then (only once it serves) disable
    the current one; with no `rollbackServerGroup` stage type yet, that is two stages in one run."""
    for name in (form.serverGroup, form.restoreServerGroup):
        if name is not None and not _belongs(application, name):
            raise ApiError(
                422, "not_in_application", f"server group {name} is not in application {application}", "serverGroup"
            )
    where = {"account": form.account, "namespace": form.namespace}
    stages: list[dict[str, Any]]
    if action == "resize":
        if form.desired is None:
            raise ApiError(422, "missing_field", "resize needs `desired`", "desired")
        # Spinnaker's simple resize sets min = max = desired; the count is absolute, so a retried
        # or repeated click changes nothing twice.
        capacity = {"min": form.desired, "max": form.desired, "desired": form.desired}
        stages = [
            {
                "refId": "resize",
                "type": "resizeServerGroup",
                "name": f"Resize {form.serverGroup} to {form.desired}",
                "serverGroupName": form.serverGroup,
                "resizeType": "exact",
                "capacity": capacity,
                **where,
            }
        ]
    elif action == "rollback":
        if form.restoreServerGroup is None:
            raise ApiError(422, "missing_field", "rollback needs `restoreServerGroup`", "restoreServerGroup")
        stages = [
            {
                "refId": "enable",
                "type": "enableServerGroup",
                "name": f"Enable {form.restoreServerGroup}",
                "serverGroupName": form.restoreServerGroup,
                **where,
            },
            {
                "refId": "disable",
                "type": "disableServerGroup",
                "name": f"Disable {form.serverGroup}",
                "serverGroupName": form.serverGroup,
                "requisiteStageRefIds": ["enable"],
                **where,
            },
        ]
    else:
        stage_type = {"enable": "enableServerGroup", "disable": "disableServerGroup", "destroy": "destroyServerGroup"}
        stages = [
            {
                "refId": action,
                "type": stage_type[action],
                "name": f"{action.capitalize()} {form.serverGroup}",
                "serverGroupName": form.serverGroup,
                **where,
            }
        ]
    return {
        "application": application,
        "name": f"console-{action}",
        "description": f"{action} from the Gennaker console",
        "stages": stages,
    }

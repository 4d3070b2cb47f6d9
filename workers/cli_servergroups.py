"""`gennaker servergroup resize|enable|disable|destroy|rollback`: ad-hoc cluster actions.

Each action is an inline pipeline of the matching cluster stage started with `POST /executions`,
so it is durable, authorised and audited (its trigger records who ran it) like any other run and
shows among the application's executions as `cli-<action>`. A rollback is Spinnaker's explicit
rollback: enable the restored group, then (once it serves) disable the current one; there is no
rollback stage type, so that is two stages in one run. The restored group defaults to the newest
group older than the current one, read from the live cluster before the run starts, so the run
names both groups and does exactly what was shown.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from workers.cli_common import DEFAULT_API, ApiUrl, User, console, errors, fail, gateway
from workers.cli_follow import follow_execution
from workers.gateway_client import EXIT_BAD_INPUT, CliError, GatewayClient

servergroup_app = typer.Typer(
    help="Act on one server group: resize, enable, disable, destroy, rollback (each a one-stage run).",
    no_args_is_help=True,
)

# Kubernetes names (RFC 1123); the gateway validates the pipeline again, this only answers early.
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
VERSIONED = re.compile(r"^(?P<cluster>.+)-v(?P<version>\d{3,})$")
MAX_REPLICAS = 1000

AppArg = Annotated[str, typer.Argument(metavar="APP", help="Application that owns the cluster")]
Account = Annotated[str, typer.Option("--account", metavar="ACCOUNT", help="Kubernetes account")]
Namespace = Annotated[str, typer.Option("--namespace", metavar="NAMESPACE", help="Namespace")]
Cluster = Annotated[
    str | None, typer.Option("--cluster", metavar="CLUSTER", help="Cluster (default: from the server group's name)")
]
ServerGroup = Annotated[str, typer.Option("--server-group", metavar="NAME", help="Server group, e.g. shop-web-v003")]
Follow = Annotated[bool, typer.Option("--follow", "-f", metavar="", help="Show live progress until it ends")]


def _where(application: str, account: str, namespace: str, cluster: str | None, server_group: str) -> dict[str, Any]:
    """The stage fields naming the server group; bad names are exit 2 before anything starts."""
    for flag, value in (("--account", account), ("--namespace", namespace), ("--server-group", server_group)):
        if not LABEL.match(value):
            raise CliError(f"{flag} {value!r} is not a valid Kubernetes name (lowercase letters, digits, '-')")
    versioned = VERSIONED.match(server_group)
    derived = versioned.group("cluster") if versioned else server_group
    if cluster is not None and cluster != derived:
        raise CliError(f"server group {server_group} is not in cluster {cluster} (its cluster is {derived})")
    if derived != application and not derived.startswith(application + "-"):
        # cluster = app[-stack[-detail]] (DESIGN.md §4): another application's group is not ours to touch.
        raise CliError(f"server group {server_group} is not in application {application}")
    return {"account": account, "namespace": namespace, "cluster": derived, "serverGroupName": server_group}


def _start(client: GatewayClient, application: str, action: str, stages: list[dict[str, Any]], follow: bool) -> None:
    pipeline = {
        "application": application,
        "name": f"cli-{action}",
        "description": f"{action} from the gennaker CLI",
        "stages": stages,
    }
    started = client.request("POST", "/executions", json={"pipeline": pipeline, "parameters": {}})
    console.print(f"started [bold]{escape(started['id'])}[/bold]  ({escape(stages[-1]['name'])})", highlight=False)
    if follow:
        raise typer.Exit(follow_execution(client, started["id"], console, errors))
    console.print(f"  follow it: gennaker status {escape(started['id'])} --follow", highlight=False)


# action -> (stage type, verb of the stage's title): what each one-stage action runs.
STAGES: dict[str, tuple[str, str]] = {
    "resize": ("resizeServerGroup", "Resize"),
    "enable": ("enableServerGroup", "Enable"),
    "disable": ("disableServerGroup", "Disable"),
    "destroy": ("destroyServerGroup", "Destroy"),
}


def _stage(action: str, where: dict[str, Any], *, detail: str = "", **fields: Any) -> dict[str, Any]:
    """The stage `action` runs on the server group `where` names (`detail` ends its title)."""
    stage_type, verb = STAGES[action]
    title = f"{verb} {where['serverGroupName']}{detail}"
    return {"refId": action, "type": stage_type, "name": title, **where, **fields}


def _act(
    action: str,
    application: str,
    account: str,
    namespace: str,
    cluster: str | None,
    server_group: str,
    follow: bool,
    api: str,
    user: str | None,
    *,
    confirm: Callable[[], None] | None = None,
    detail: str = "",
    **fields: Any,
) -> None:
    """Validate the names, `confirm` (it may refuse), then start the one-stage run of `action`."""
    try:
        where = _where(application, account, namespace, cluster, server_group)
        if confirm is not None:
            confirm()
        _start(gateway(api, user), application, action, [_stage(action, where, detail=detail, **fields)], follow)
    except CliError as error:
        raise fail(error) from None


@servergroup_app.command("resize")
def resize(
    application: AppArg,
    account: Account,
    namespace: Namespace,
    server_group: ServerGroup,
    capacity: Annotated[
        int, typer.Option("--capacity", metavar="N", min=0, max=MAX_REPLICAS, help="Desired replica count")
    ],
    cluster: Cluster = None,
    follow: Follow = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Set a server group's desired count (min = max = desired, as Spinnaker's simple resize)."""
    exact: dict[str, Any] = {"resizeType": "exact", "capacity": {"min": capacity, "max": capacity, "desired": capacity}}
    _act(
        "resize",
        application,
        account,
        namespace,
        cluster,
        server_group,
        follow,
        api,
        user,
        detail=f" to {capacity}",
        **exact,
    )


def _traffic_command(action: str, help_text: str) -> None:
    """Register `enable` or `disable`: same options, only the stage differs."""

    def command(
        application: AppArg,
        account: Account,
        namespace: Namespace,
        server_group: ServerGroup,
        cluster: Cluster = None,
        follow: Follow = False,
        api: ApiUrl = DEFAULT_API,
        user: User = None,
    ) -> None:
        _act(action, application, account, namespace, cluster, server_group, follow, api, user)

    command.__doc__ = help_text  # typer shows the docstring as the command's help
    servergroup_app.command(action)(command)


_traffic_command("enable", "Put a server group into its load balancers' traffic.")
_traffic_command("disable", "Take a server group out of its load balancers' traffic (its pods keep running).")


@servergroup_app.command("destroy")
def destroy(
    application: AppArg,
    account: Account,
    namespace: Namespace,
    server_group: ServerGroup,
    cluster: Cluster = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", metavar="", help="Do not ask (needed without a terminal)")
    ] = False,
    follow: Follow = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Disable, then delete a server group and its pods. Asks first unless --yes."""

    def ask() -> None:
        if not sys.stdin.isatty():
            raise CliError(f"destroying {server_group} needs --yes when there is no terminal to ask on")
        question = f"Destroy server group {server_group} (account {account}, namespace {namespace}) and its pods?"
        if not typer.confirm(question, default=False):
            errors.print("nothing destroyed")
            raise typer.Exit(EXIT_BAD_INPUT)

    confirm = None if yes else ask
    _act("destroy", application, account, namespace, cluster, server_group, follow, api, user, confirm=confirm)


def _previous_group(client: GatewayClient, application: str, where: dict[str, Any]) -> str:
    """The newest server group of the cluster older than the current one."""
    found = client.request(
        "GET",
        f"/applications/{application}/clusters",
        params={"account": where["account"], "namespace": where["namespace"]},
    )
    groups = [
        group
        for cluster in found["clusters"]
        if cluster["name"] == where["cluster"] and cluster["namespace"] == where["namespace"]
        for group in cluster["serverGroups"]
    ]
    names = {group["name"] for group in groups}
    current = next((g for g in groups if g["name"] == where["serverGroupName"]), None)
    if current is None:
        raise CliError(
            f"no server group {where['serverGroupName']} in {where['account']}/{where['namespace']} "
            f"(server groups: {', '.join(sorted(names)) or 'none'})"
        )
    older = [g for g in groups if (g.get("version") or -1) < (current.get("version") or -1)]
    if not older:
        raise CliError(f"{current['name']} has no older server group to roll back to; give --to NAME")
    return str(max(older, key=lambda g: g.get("version") or -1)["name"])


@servergroup_app.command("rollback")
def rollback(
    application: AppArg,
    account: Account,
    namespace: Namespace,
    server_group: Annotated[
        str, typer.Option("--server-group", metavar="NAME", help="The current server group (disabled at the end)")
    ],
    restore: Annotated[
        str | None,
        typer.Option("--to", metavar="NAME", help="Group to restore (default: the newest one older than the current)"),
    ] = None,
    cluster: Cluster = None,
    follow: Follow = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Enable the previous server group, then disable the current one (two stages, one run)."""
    try:
        where = _where(application, account, namespace, cluster, server_group)
        client = gateway(api, user)
        if restore is None:
            restore = _previous_group(client, application, where)
        restored = _where(application, account, namespace, where["cluster"], restore)
        if restore == server_group:
            raise CliError("--to must name a server group other than --server-group")
        stages = [_stage("enable", restored), _stage("disable", where, requisiteStageRefIds=["enable"])]
        _start(client, application, "rollback", stages, follow)
    except CliError as error:
        raise fail(error) from None

"""Deploy: a new server group (ReplicaSet `<cluster>-v<NNN>`) with a strategy, on one Kubernetes account.

Strategies (workflows/stages/deploy_strategies.py):
- `none`: create it enabled; wait until healthy.
- `highlander`: as `none`, then disable and destroy every older group of the cluster.
- `redblack`: create it disabled; healthy → enabled → older enabled groups disabled → after
  `delayBeforeScaleDownSec` scaled to 0 if `scaleDown`; `maxRemainingAsgs` destroys the oldest.
- `rollingRedBlack`: create it with 0 replicas; for each of `targetPercentages` scale it to that share
  of `capacity.desired` and take the same share of traffic off the older groups' pods; with
  `stepJudgment`, someone approves each step after the first: a judgment on this deploy stage
  itself (see `approve_step`).
On failure or cancel (`rollback.onFailure`, default on) the new group is disabled (or destroyed) and
the older groups are re-enabled before the stage ends, so the old version keeps serving.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from workflows.cluster_lease import hold_cluster_lease
from workflows.context import StageContext
from workflows.stages.base import JudgmentGate, StageConfig, StageFailed
from workflows.stages.deploy_strategies import DeployPlan, ServerGroupOps, run_strategy, short
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.firewalls import IngressRule, SecurityGroupSpec
    from activities.kubernetes.servergroup_create import ScalingPolicy
    from activities.kubernetes.servergroups import Capacity, CreateRequest, cluster_name

Strict = ConfigDict(extra="forbid", frozen=True)


class HttpGetProbe(BaseModel):
    model_config = Strict
    path: str = "/"
    port: int | str
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"


class TcpSocketProbe(BaseModel):
    model_config = Strict
    port: int | str


class ExecProbe(BaseModel):
    model_config = Strict
    command: list[str] = Field(min_length=1)


class Probe(BaseModel):
    """A health check: exactly one of httpGet, tcpSocket, exec (Kubernetes probe fields)."""

    model_config = Strict
    httpGet: HttpGetProbe | None = None
    tcpSocket: TcpSocketProbe | None = None
    exec: ExecProbe | None = None
    initialDelaySeconds: int | None = Field(default=None, ge=0)
    periodSeconds: int | None = Field(default=None, ge=1)
    timeoutSeconds: int | None = Field(default=None, ge=1)
    failureThreshold: int | None = Field(default=None, ge=1)
    successThreshold: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        if sum(h is not None for h in (self.httpGet, self.tcpSocket, self.exec)) != 1:
            raise ValueError("give exactly one of httpGet, tcpSocket, exec")
        return self


class ContainerPort(BaseModel):
    model_config = Strict
    containerPort: int = Field(ge=1, le=65535)
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class Resources(BaseModel):
    model_config = Strict
    requests: dict[str, str] = Field(default_factory=dict, description="e.g. {cpu: 100m, memory: 128Mi}")
    limits: dict[str, str] = Field(default_factory=dict)


class ContainerSpec(BaseModel):
    model_config = Strict
    name: str = "main"
    image: str = Field(min_length=1)
    ports: list[ContainerPort] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    command: list[str] | None = None
    args: list[str] | None = None
    resources: Resources | None = None
    readinessProbe: Probe | None = None
    livenessProbe: Probe | None = None

    def manifest(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude_none=True, exclude={"env"})
        if self.env:
            out["env"] = [{"name": k, "value": v} for k, v in self.env.items()]
        return out


class SecurityGroupDef(BaseModel):
    """A security group to create or update (a NetworkPolicy) and attach."""

    model_config = Strict
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    description: str | None = None
    ingress: list[IngressRule] = Field(default_factory=list)


class Rollback(BaseModel):
    model_config = Strict
    onFailure: bool = True
    failedServerGroup: Literal["disable", "destroy"] = "disable"


class StepJudgment(BaseModel):
    """A person approves each rolling step after the first: a judgment of the deploy stage itself."""

    model_config = Strict
    instructions: str | None = None
    judgmentInputs: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list, description="Users or group:<name> allowed to approve")
    timeoutMs: int | None = Field(default=None, gt=0, description="A step not approved in this long fails")


MAX_LABEL_VALUE = 63


@register_stage
class DeployStage(StageConfig):
    type: Literal["deploy"] = "deploy"
    account: str = Field(min_length=1, description="Kubernetes account (its worker holds the credentials)")
    namespace: str = "default"
    application: str | None = Field(default=None, description="Default: the pipeline's application")
    stack: str | None = Field(default=None, pattern=r"^[a-z0-9]*$")
    freeFormDetails: str | None = Field(default=None, pattern=r"^[a-z0-9-]*$")
    container: ContainerSpec | None = None
    manifest: dict[str, Any] | None = Field(default=None, description="A ReplicaSet manifest instead of container")
    capacity: Capacity = Field(default_factory=Capacity)
    scalingPolicy: ScalingPolicy | None = Field(
        default=None, description="Autoscale the new group between capacity.min and capacity.max (an HPA)"
    )
    loadBalancers: list[str] = Field(default_factory=list, description="Services whose selector labels enable pods")
    securityGroups: list[str | SecurityGroupDef] = Field(default_factory=list)
    strategy: Literal["none", "highlander", "redblack", "rollingRedBlack"] = "none"
    scaleDown: bool = False
    delayBeforeScaleDownSec: float = Field(default=0, ge=0)
    maxRemainingAsgs: int | None = Field(default=None, ge=1)
    rollback: Rollback = Field(default_factory=Rollback)
    targetPercentages: list[int] = Field(default_factory=lambda: [100])
    stepJudgment: StepJudgment | None = None
    waitForHealthySec: float = Field(default=600, gt=0, description="How long the new group may take to be ready")
    maxRestarts: int | None = Field(default=5, ge=0, description="Fail early once a container restarted more often")

    @model_validator(mode="after")
    def _check(self) -> DeployStage:
        if (self.container is None) == (self.manifest is None):
            raise ValueError("give exactly one of `container` or `manifest` (a ReplicaSet)")
        if self.manifest is not None and self.manifest.get("kind", "ReplicaSet") != "ReplicaSet":
            raise ValueError("manifest must be a ReplicaSet (use deployManifest for other kinds)")
        steps = self.targetPercentages
        if not steps or steps != sorted(steps) or steps[-1] != 100 or steps[0] <= 0:
            raise ValueError("targetPercentages must rise from above 0 to 100, e.g. [25, 50, 100]")
        cap = self.capacity
        if self.scalingPolicy is not None and not (1 <= cap.min <= cap.desired <= cap.max):
            raise ValueError("scalingPolicy needs capacity with 1 <= min <= desired <= max (the autoscaler's bounds)")
        return self

    def judgment_gate(self) -> JudgmentGate | None:
        step = self.stepJudgment
        if step is None:
            return None
        return JudgmentGate(options=step.judgmentInputs, approvers=step.approvers, instructions=step.instructions)

    def cluster(self, application: str) -> str:
        return cluster_name(self.application or application, self.stack, self.freeFormDetails)

    def summary(self) -> str:
        return f"Deploy ({self.strategy}) to {self.account}/{self.namespace}"

    def pod_template(self) -> dict[str, Any]:
        if self.container is not None:
            return {"metadata": {"labels": {}}, "spec": {"containers": [self.container.manifest()]}}
        template = dict((self.manifest or {}).get("spec", {}).get("template") or {})
        if not template.get("spec", {}).get("containers"):
            raise StageFailed("manifest.spec.template.spec.containers is empty")
        return template

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        application = self.application or ctx.execution.application
        cluster = self.cluster(ctx.execution.application)
        # A server group's name is also its `gennaker.io/server-group` label value, which a real API
        # server caps at 63 characters (kubesim did not): refuse before anything is written.
        longest = f"{cluster}-v000"
        if len(longest) > MAX_LABEL_VALUE and workflow.patched("deploy-server-group-name-length"):
            raise StageFailed(
                f"server group names of cluster {cluster} would be {len(longest)} characters ({longest}); "
                f"they are label values, at most {MAX_LABEL_VALUE}: shorten the application, stack or freeFormDetails"
            )
        # Acting for another application needs a delegation recorded at submission (core/tenancy.py).
        ops = ServerGroupOps(ctx, self.account, self.namespace, grants=ctx.grants_for(application))
        ops.claim(cluster)
        async with hold_cluster_lease(ctx, self.account, self.namespace, cluster):
            return await self._deploy(ctx, ops, application, cluster)

    async def _deploy(self, ctx: StageContext, ops: ServerGroupOps, application: str, cluster: str) -> dict[str, Any]:
        groups: list[str] = []
        for group in self.securityGroups:
            if isinstance(group, SecurityGroupDef):
                await ops.upsert_security_group(
                    SecurityGroupSpec(namespace=self.namespace, **group.model_dump(mode="json"))
                )
            groups.append(group if isinstance(group, str) else group.name)
        ctx.set_details(f"reading cluster {cluster}")
        before = await ops.describe(cluster)
        deploy_key = f"{ctx.execution_id}/{ctx.execution.runId}/{ctx.stage.refId}"
        reservation = await ops.reserve(application, cluster, deploy_key)
        name = reservation.name
        older = [g for g in before.serverGroups if g.name != name]
        template = self.pod_template()

        def create(replicas: int, enabled: bool) -> CreateRequest:
            return CreateRequest(
                namespace=self.namespace,
                application=application,
                cluster=cluster,
                name=name,
                deployKey=deploy_key,
                executionId=ctx.execution_id,
                stage=ctx.stage.refId,
                podTemplate=template,
                replicas=replicas,
                capacity=self.capacity,
                loadBalancers=self.loadBalancers,
                securityGroups=groups,
                enabled=enabled,
                scalingPolicy=self.scalingPolicy,
            )

        plan = DeployPlan(
            application=application,
            cluster=cluster,
            strategy=self.strategy,
            capacity=self.capacity,
            create=create,
            timeout=self.waitForHealthySec,
            max_restarts=self.maxRestarts,
            rollback=self.rollback.onFailure,
            destroy_failed=self.rollback.failedServerGroup == "destroy",
            scale_down=self.scaleDown,
            delay_before_scale_down=self.delayBeforeScaleDownSec,
            max_remaining=self.maxRemainingAsgs,
            target_percentages=self.targetPercentages,
            approve_step=(lambda i, p: self.approve_step(ctx, cluster, name, i, p)) if self.stepJudgment else None,
        )
        run = await run_strategy(ops, plan, name, older)
        images = [c.get("image") for c in template.get("spec", {}).get("containers", [])]
        return {
            **ctx.stage.outputs,  # step judgments recorded by approve_step
            "account": self.account,
            "namespace": self.namespace,
            "application": application,
            "cluster": cluster,
            "serverGroup": name,
            "version": reservation.version,
            "image": images[0] if images else None,
            "images": images,
            "capacity": self.capacity.model_dump(),
            "strategy": self.strategy,
            "previousServerGroups": [g.name for g in older],
            "disabledServerGroups": run.disabled,
            "scaledDownServerGroups": run.scaled_down,
            "destroyedServerGroups": run.destroyed,
            "rollingSteps": run.steps,
            "deploy.server.groups": {self.namespace: [name]},
        }

    async def approve_step(self, ctx: StageContext, cluster: str, name: str, index: int, percentage: int) -> None:
        """Pause a rolling deploy until a person approves the next step.

        The deploy stage itself waits for a judgment, accepted like any other (`judgment_gate`):
        the API `POST /executions/<id>/stages/<this refId>/judgment`, `gennaker approve`, or the
        `judgment` signal. `stop` (or no answer within `timeoutMs`) fails this deploy, which then
        rolls back.
        """
        judgment = self.stepJudgment or StepJudgment()
        step = index + 1
        question = judgment.instructions or f"Shift {cluster} to {percentage}% on {short(name, cluster)}?"
        ctx.set_details(f"waiting for approval of step {step} ({percentage}%): {question}")
        ctx.notify("judgment.waiting", index)
        limit = timedelta(milliseconds=judgment.timeoutMs) if judgment.timeoutMs else None
        record = await ctx.wait_for_judgment(
            limit, summary=f"Approve step {step} ({percentage}%) of {name}", consume=True
        )
        if record is None:
            raise StageFailed(f"step {step} ({percentage}%) not approved within {limit}")
        ctx.stage.judgment = record
        ctx.stage.outputs = {
            **ctx.stage.outputs,
            f"step{step}Judgment": {
                "judgmentStatus": record.judgmentStatus,
                "judgmentInput": record.input,
                "comment": record.comment,
                "judgedBy": record.judged_by,
                "judgedAt": record.judgedAt.isoformat(),
                "via": record.via,
                "verified": record.verified,
            },
        }
        if record.judgmentStatus == "stop":
            who = record.judged_by or "unknown user"
            raise StageFailed(
                f"step {step} ({percentage}%) not approved: judged stop by {who}"
                + (f": {record.comment}" if record.comment else "")
            )

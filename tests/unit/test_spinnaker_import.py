"""`gennaker import spinnaker` without servers: every SpEL form is translated and then RUN with
Gennaker's CEL evaluator against a context, and the result compared with what SpEL gives for the
same execution; envelope, triggers, notifications, stages and the corpus are checked as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.spinnaker import ImportOptions, SourceError, import_path, import_pipelines, parse_mapping, pipelines_in
from core.spinnaker.cel_values import Untranslatable
from core.spinnaker.cron import NoEquivalent, quartz_to_cron
from core.spinnaker.report import Recorder
from core.spinnaker.sources import MAX_DEPTH, parse_json
from core.spinnaker.templates import Templates
from core.spinnaker.translate import Scope, Translator
from workflows.expressions import evaluate_condition, evaluate_text
from workflows.model import parse_pipeline
from workflows.spel_lint import spel_problems

CORPUS = Path(__file__).parents[1] / "fixtures" / "spinnaker"

# One execution seen from both sides. Spinnaker's view is only written down as the expected values.
SCOPE = Scope(
    stage_refs={"Build": "build", "Approve": "4", "Vars": "2", "Deploy": "deploy"},
    ref_ids={"1": "build", "4": "4", "2": "2"},
    stage_types={"build": "jenkins", "4": "manualJudgment", "2": "evaluateVariables", "deploy": "deployManifest"},
    stage_literals={"deploy": {"account": "k8s-prod", "type": "deployManifest"}},
    parameters={"env": "env", "target-region": "target_region", "count": "count", "empty": "empty", "n": "n"},
    variables={"myVar": "myVar"},
    pipelines={"Deploy Web": "deploy-web", "2f1d7c1a-0004": "deploy-web"},
)
CONTEXT: dict[str, Any] = {
    "parameters": {"env": "prod", "target_region": "eu-west", "count": 3, "empty": "", "n": "41"},
    "trigger": {
        "type": "docker",
        "user": "ana",
        "source": "parent-exec",
        "payload": {"tag": "1.2.3", "repository": "shop/web", "buildNumber": 17, "branch": "main"},
        "runAs": None,
    },
    "execution": {"id": "exec-1", "application": "shop", "pipeline": "release", "revision": 1, "startTime": "x"},
    "stages": {
        "build": {"name": "Build", "type": "jenkins", "status": "SUCCEEDED",
                  "outputs": {"buildNumber": 7, "url": "http://ci/7", "properties": {"IMAGE": "shop/web:7"}}},
        "4": {"name": "Approve", "type": "manualJudgment", "status": "SUCCEEDED", "outputs": {"judgmentStatus": "continue"}},
        "2": {"name": "Vars", "type": "evaluateVariables", "status": "SUCCEEDED", "outputs": {"myVar": "v"}},
    },
    "judgments": {"4": "ship", "Approve": "ship"},
    "variables": {"myVar": "hello"},
}  # fmt: skip


def translate(text: str) -> tuple[str, Recorder]:
    report = Recorder()
    return Templates(Translator(SCOPE), report).text(text, "field"), report


def run(spel: str) -> Any:
    translated, report = translate(spel)
    assert not [i for i in report.items if i.outcome == "untranslated"], report.items
    assert "${{" in translated and "${ " not in translated.replace("${{ ", "")
    return evaluate_text(translated, CONTEXT)


# (SpEL as a pipeline holds it, what SpEL evaluates it to for the execution above)
FORMS = [
    ("${ parameters.env }", "prod"),
    ("${parameters['target-region']}", "eu-west"),
    ('${ parameters["env"] }', "prod"),
    ("${ trigger.tag }", "1.2.3"),
    ("${ trigger['repository'] }", "shop/web"),
    ("${ trigger.parameters.env }", "prod"),
    ("${ trigger.buildInfo.number }", 17),
    ("${ trigger.user }", "ana"),
    ("${ trigger.parentExecution.id }", "parent-exec"),
    ("${ execution.id }", "exec-1"),
    ("${ execution.name }", "release"),
    ("${ execution.application }", "shop"),
    ("${ execution.trigger.tag }", "1.2.3"),
    ("${ #stage('Build').context.buildInfo.number }", 7),
    ("${ #stage('Build').context.IMAGE }", "shop/web:7"),
    ("${ #stage('Vars').outputs.myVar }", "v"),
    ("${ #stage('Deploy').context.account }", "k8s-prod"),
    ("${ #stage('Build').status }", "SUCCEEDED"),
    ("${ #stage('Build').status.toString() == 'SUCCEEDED' }", True),
    ("${ #stageByRefId('1').context.buildInfo.url }", "http://ci/7"),
    ("${ #stageExists('Build') }", True),
    ("${ #stageExists('Nope') }", False),
    ("${ #judgment('Approve') }", "ship"),
    ("${ #judgement('Approve') == 'ship' }", True),
    ("${ #pipelineId('Deploy Web') }", "deploy-web"),
    ("${ myVar }", "hello"),
    ("${ parameters.env.equals('prod') }", True),
    ("${ parameters.env.equals('dev') }", False),
    ("${ parameters.count.toString() }", "3"),
    ("${ parameters.empty ?: 'fallback' }", "fallback"),  # Spring's Elvis treats "" as null
    ("${ parameters.env ?: 'fallback' }", "prod"),
    ("${ trigger.digest ?: 'none' }", "none"),  # a key the trigger does not have reads as null
    ("${ parameters.env == 'prod' ? 3 : 1 }", 3),
    ("${ parameters.env != 'prod' ? 'a' : parameters.env eq 'prod' ? 'b' : 'c' }", "b"),
    ("${ trigger.tag matches '\\d+\\.\\d+\\.\\d+' }", True),
    ("${ 'abc' matches 'b' }", False),  # SpEL matches the whole string; CEL's matches() searches
    ("${ trigger.tag.matches('1\\..*') }", True),
    ("${ parameters.env == 'prod' and not (parameters.count < 2) }", True),
    ("${ parameters.env == 'dev' or parameters.count ge 3 }", True),
    ("${ 'v' + parameters.count }", "v3"),  # Java's + turns the number into text
    ("${ #toInt(parameters.n) + 1 }", 42),
    ("${ #toBoolean('true') }", True),
    ("${ parameters.env.startsWith('pr') && parameters.env.length() == 4 }", True),
    ("${ {'a': 1, 'b': parameters.env}['b'] }", "prod"),
    ("${ {1, 2, 3}.size() }", 3),
    ("release-${ parameters.env }-${ trigger.tag }", "release-prod-1.2.3"),
    ("${ -parameters.count * 2 % 4 }", -2),  # Java: (-3 * 2) % 4 == -2; CEL keeps the sign of the dividend
]


@pytest.mark.parametrize(("spel", "expected"), FORMS, ids=[f for f, _ in FORMS])
def test_spel_form_keeps_its_meaning_when_run_as_cel(spel: str, expected: Any) -> None:
    assert run(spel) == expected


def test_to_json_prints_json_text_like_spel() -> None:
    value = run("${ #toJson(parameters) }")
    assert isinstance(value, str) and json.loads(value) == CONTEXT["parameters"]
    assert json.loads(run("${ #toJson({'tag': trigger.tag, 'n': 2}) }")) == {"tag": "1.2.3", "n": 2}
    assert run("cfg=${ #toJson({'a': 1}) }") == 'cfg={"a":1}'


@pytest.mark.parametrize(
    ("spel", "reason"),
    [
        ("${ #fromUrl('https://x.example/a.json') }", "no I/O"),
        ("${ #readJson(#fromUrl('https://x.example')) }", "no I/O"),
        ("${ trigger.properties.IMAGE }", "property file"),
        ("${ trigger.artifacts[0].reference }", "trigger.artifacts"),
        ("${ T(java.lang.Math).PI }", "T(...)"),
        ("${ execution.stages.?[type == 'wait'] }", "selection"),
        ("${ #stage('Nope').context.x }", "no such stage"),
        ("${ #pipelineId('Nope') }", "no pipeline of that name"),
        ("${ unknownThing }", "unknown name"),
        ("${ trigger }", "on its own"),
        ("${ parameters.env.substring(0, 2) }", "no CEL counterpart"),
        ("${ parameters.env. }", "can be read"),
        ("${ parameters.env", "never closed"),
    ],
)
def test_untranslatable_forms_are_reported_and_kept_for_a_person(spel: str, reason: str) -> None:
    translated, report = translate(spel)
    untranslated = [i for i in report.items if i.outcome == "untranslated"]
    assert len(untranslated) == 1 and untranslated[0].expression and reason in untranslated[0].message
    assert untranslated[0].path == "field"
    assert translated == spel  # kept as written: validation then rejects it instead of using it as text
    assert spel_problems({"stages": [{"refId": "a", "x": translated}]})


def test_conditions_translate_bare_or_wrapped() -> None:
    report = Recorder()
    templates = Templates(Translator(SCOPE), report)
    bare = templates.condition("parameters.env == 'prod' and #judgment('Approve').equals('ship')", "c")
    assert "${" not in bare and evaluate_condition(bare, CONTEXT) is True
    wrapped = templates.condition("${ parameters.count > 5 }", "c")
    assert evaluate_condition(wrapped, CONTEXT) is False


def test_translator_rejects_computed_keys_on_mapped_roots() -> None:
    with pytest.raises(Untranslatable):
        Translator(SCOPE).expression("trigger[parameters.env]")


# ---- cron -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quartz", "cron"),
    [
        ("0 0 10 ? * MON-FRI", "0 10 * * MON-FRI"),
        ("0 0/15 * * * ?", "0-59/15 * * * *"),
        ("0 30 6 ? * 2-6", "30 6 * * 1-5"),  # Quartz numbers Sunday 1, cron 0
        ("0 0 12 ? * 1,7", "0 12 * * 0,6"),
        ("0 15 2 * * ?", "15 2 * * *"),
        ("0 0 0 1 JAN-JUN ? *", "0 0 1 JAN-JUN *"),
    ],
)
def test_quartz_cron_with_a_5_field_equivalent(quartz: str, cron: str) -> None:
    assert quartz_to_cron(quartz) == cron


@pytest.mark.parametrize("quartz", ["30 * * * * ?", "0 0 0 L * ?", "0 0 6 ? * 6#3", "0 0 0 15W * ?", "0 0 0 * * ? 2030",
                                    "0 0 0 1 * MON", "* * * *"])  # fmt: skip
def test_quartz_cron_without_an_equivalent_is_refused(quartz: str) -> None:
    with pytest.raises(NoEquivalent):
        quartz_to_cron(quartz)


# ---- envelope, triggers, notifications --------------------------------------------------------


def imported(*pipelines: dict[str, Any], **options: Any) -> Any:
    return import_pipelines([(f"p[{i}]", p) for i, p in enumerate(pipelines)], ImportOptions(**options)).pipelines


def items(result: Any, outcome: str) -> dict[str, str]:
    return {i.path: i.message for i in result.items if i.outcome == outcome}


def test_envelope_bookkeeping_is_dropped_and_names_are_slugged() -> None:
    [result] = imported(
        {"id": "abc", "index": 3, "updateTs": "1", "lastModifiedBy": "x", "appConfig": {}, "spelEvaluator": "v4",
         "schema": "1", "application": "Shop", "name": "Deploy to Prod!", "description": "the one",
         "limitConcurrent": False, "keepWaitingPipelines": True, "stages": [{"refId": "1", "type": "wait", "waitTime": 1}]}
    )  # fmt: skip
    assert result.valid and result.complete
    spec = parse_pipeline(result.pipeline)
    assert (spec.application, spec.name) == ("shop", "deploy-to-prod")
    assert spec.description == "Deploy to Prod! — the one" and spec.keepWaitingPipelines
    dropped = items(result, "dropped")
    for key in ("id", "index", "updateTs", "lastModifiedBy", "appConfig", "spelEvaluator", "schema"):
        assert "changes nothing" in dropped[key]


def test_parameter_config_maps_options_defaults_required_and_renames() -> None:
    [result] = imported(
        {"application": "shop", "name": "p", "stages": [{"refId": "1", "type": "wait", "waitTime": "${ parameters['wait-s'] }"}],
         "parameterConfig": [
             {"name": "wait-s", "label": "Seconds", "description": "how long", "default": "1", "required": True, "pinned": True},
             {"name": "env", "default": "", "required": True, "hasOptions": True, "options": [{"value": "a"}, {"value": "b"}]},
             {"name": "free", "default": "", "hasOptions": False, "options": [{"value": "x"}]}]}
    )  # fmt: skip
    params = result.pipeline["parameters"]
    assert params[0] == {
        "name": "wait_s",
        "label": "Seconds",
        "description": "how long",
        "required": True,
        "default": "1",
    }
    assert params[1] == {"name": "env", "required": True, "options": ["a", "b"]}
    assert params[2] == {"name": "free", "default": ""}
    assert result.pipeline["stages"][0]["waitTime"] == "${{ parameters.wait_s }}"
    assert result.valid, result.problems
    assert "parameterConfig[0].pinned" in items(result, "dropped")


def test_triggers_map_and_secrets_are_asked_for_by_name_never_copied() -> None:
    [result] = imported(
        {"application": "shop", "name": "p", "stages": [{"refId": "1", "type": "wait", "waitTime": 1}],
         "triggers": [
             {"type": "docker", "account": "hub", "registry": "index.docker.io", "organization": "o", "repository": "o/web", "tag": "v.*", "enabled": True},
             {"type": "git", "source": "github", "project": "o", "slug": "web", "branch": "main", "secret": "TOP-SECRET-VALUE"},
             {"type": "jenkins", "master": "ci", "job": "build"},
             {"type": "webhook", "source": "My Hook", "payloadConstraints": {"action": "push"}},
             {"type": "cron", "cronExpression": "0 0 3 ? * *", "runAsUser": "robot@example"},
             {"type": "pubsub", "pubsubSystem": "google", "subscriptionName": "s"}]},
        account_map={"hub": "local-registry"},
    )  # fmt: skip
    assert "TOP-SECRET-VALUE" not in json.dumps(result.pipeline)
    docker, git, jenkins, webhook, cron = result.pipeline["triggers"]
    assert docker == {"type": "docker", "account": "local-registry", "repository": "o/web", "tag": "v.*"}
    assert git["secret"] == "github-o-web" and jenkins["secret"] == "jenkins-ci"
    assert webhook == {
        "type": "webhook",
        "source": "my-hook",
        "secret": "webhook-my-hook",
        "payloadConstraints": {"action": "push"},
    }
    assert cron == {"type": "cron", "cron": "0 3 * * *", "timezone": "America/Los_Angeles"}
    assert result.pipeline["serviceAccount"] == "robot@example"
    assert "pubsub" in items(result, "untranslated")["triggers[5]"]
    assert result.valid, result.problems


def test_pipeline_ids_become_saved_pipeline_names_of_the_export() -> None:
    parent = {
        "id": "id-1",
        "application": "shop",
        "name": "Deploy Web",
        "stages": [{"refId": "1", "type": "wait", "waitTime": 1}],
    }
    child = {"application": "shop", "name": "After", "stages": [
        {"refId": "1", "type": "pipeline", "pipeline": "id-1", "pipelineParameters": {"tag-x": "${ parameters.t }"}},
        {"refId": "2", "type": "pipeline", "pipeline": "${ #pipelineId('Deploy Web') }", "requisiteStageRefIds": ["1"]}],
        "parameterConfig": [{"name": "t"}],
        "triggers": [{"type": "pipeline", "application": "shop", "pipeline": "id-1", "status": ["successful", "canceled"]}]}  # fmt: skip
    _, result = imported(parent, child)
    first, second = result.pipeline["stages"]
    assert first["pipeline"] == second["pipeline"] == "deploy-web"
    assert first["pipelineParameters"] == {"tag_x": "${{ parameters.t }}"}
    assert result.pipeline["triggers"] == [
        {"type": "pipeline", "application": "shop", "pipeline": "deploy-web", "status": ["SUCCEEDED", "CANCELED"]}
    ]
    assert result.valid, result.problems


def test_notifications_keep_level_place_and_cc_becomes_its_own() -> None:
    [result] = imported(
        {"application": "shop", "name": "p",
         "notifications": [{"type": "email", "address": "a@x", "cc": "b@x", "level": "pipeline", "when": ["pipeline.failed"],
                            "message": {"pipeline.failed": {"text": "failed ${ execution.id }"}}},
                           {"type": "microsoftteams", "address": "https://t", "level": "pipeline", "when": ["pipeline.complete"]}],
         "stages": [{"refId": "1", "type": "manualJudgment", "sendNotifications": True,
                     "notifications": [{"type": "slack", "address": "rel", "level": "stage", "when": ["manualJudgment"]}]}]}
    )  # fmt: skip
    first, cc = result.pipeline["notifications"]
    assert first["message"] == {"pipeline.failed": {"text": "failed ${{ execution.id }}"}} and cc["address"] == "b@x"
    assert result.pipeline["stages"][0]["notifications"] == [
        {"type": "slack", "address": "rel", "when": ["manualJudgment"]}
    ]
    assert "level" in items(result, "dropped")["notifications[0].level"]
    assert "microsoftteams" in items(result, "untranslated")["notifications[1]"]
    assert result.valid, result.problems


# ---- stages -----------------------------------------------------------------------------------


def test_kubernetes_stage_shapes_map_to_gennaker_types() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "old"}, "spec": {}}
    [result] = imported(
        {"application": "shop", "name": "p", "stages": [
            {"refId": "1", "type": "runJobManifest", "account": "k8s", "alias": "runJob", "cloudProvider": "kubernetes",
             "source": "text", "manifest": job, "consumeArtifactSource": "propertyFile", "propertyFile": "main"},
            {"refId": "2", "type": "findImage", "credentials": "k8s", "cluster": "shop-prod", "namespaces": ["old"],
             "selectionStrategy": "LARGEST", "cloudProvider": "kubernetes", "imageNamePattern": ".*"},
            {"refId": "3", "type": "scaleManifest", "account": "k8s", "location": "old", "cluster": "replicaSet web",
             "criteria": "second_newest", "mode": "dynamic", "replicas": "3"}]},
        account_map={"k8s": "prod"}, namespace_map={"old": "new"},
    )  # fmt: skip
    run_job, find, scale = result.pipeline["stages"]
    assert (
        run_job["type"] == "runJob"
        and run_job["account"] == "prod"
        and run_job["manifest"]["metadata"]["namespace"] == "new"
    )
    assert find == {
        "type": "findImageFromCluster",
        "refId": "2",
        "requisiteStageRefIds": [],
        "account": "prod",
        "namespace": "new",
        "cluster": "shop-prod",
        "target": "largest",
    }
    assert (scale["cluster"], scale["kind"], scale["criteria"], scale["replicas"], scale["location"]) == (
        "web",
        "replicaSet",
        "second_newest",
        3,
        "new",
    )
    assert result.valid, result.problems  # fmt: skip


def test_deploy_clusters_become_parallel_deploy_stages_and_downstream_waits_for_all() -> None:
    def cluster(stack: str) -> dict[str, Any]:
        return {
            "account": "k8s",
            "cloudProvider": "kubernetes",
            "namespace": "default",
            "application": "shop",
            "stack": stack,
            "strategy": "redblack",
            "targetSize": 2,
            "containers": [
                {
                    "name": "web",
                    "imageDescription": {"imageId": "shop/web:1"},
                    "envVars": [{"name": "A", "value": "${ parameters.a }"}],
                    "readinessProbe": {"handler": {"type": "TCP", "tcpSocketAction": {"port": 80}}, "periodSeconds": 5},
                }
            ],
            "interestingHealthProviderNames": ["KubernetesPod"],
        }

    [result] = imported({"application": "shop", "name": "p", "parameterConfig": [{"name": "a"}], "stages": [
        {"refId": "1", "type": "deploy", "name": "Deploy", "clusters": [cluster("east"), cluster("west")]},
        {"refId": "2", "type": "wait", "waitTime": 1, "requisiteStageRefIds": ["1"]}]})  # fmt: skip
    east, west, after = result.pipeline["stages"]
    assert (east["refId"], west["refId"], after["requisiteStageRefIds"]) == ("1", "1-2", ["1", "1-2"])
    assert east["container"] == {"name": "web", "image": "shop/web:1", "env": {"A": "${{ parameters.a }}"},
                                 "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}  # fmt: skip
    assert east["capacity"] == {"min": 2, "max": 2, "desired": 2} and west["stack"] == "west"
    assert result.valid, result.problems


def test_stage_types_gennaker_lacks_are_reported_and_fail_validation() -> None:
    [result] = imported({"application": "shop", "name": "p", "stages": [
        {"refId": "1", "type": "canary", "name": "Canary", "analysisType": "realTime"},
        {"refId": "2", "type": "bake", "baseOs": "bionic", "package": "web"}]})  # fmt: skip
    untranslated = items(result, "untranslated")
    assert "Gennaker has no such stage" in untranslated["stages[0].type"] and "VM image" in untranslated["stages[1]"]
    assert not result.complete and not result.valid


# ---- sources and the corpus -------------------------------------------------------------------


def test_json_with_tabs_parses_and_bad_input_is_refused() -> None:
    assert pipelines_in(parse_json('{\t"name":\t"x",\t"stages": []}', "f"), "f") == [("f", {"name": "x", "stages": []})]
    with pytest.raises(SourceError, match="not valid JSON"):
        parse_json("{", "f")
    with pytest.raises(SourceError, match="deeper"):
        pipelines_in(json.loads("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2)), "f")
    with pytest.raises(SourceError, match="array of pipelines"):
        pipelines_in(3, "f")
    with pytest.raises(SourceError, match="old=new"):
        parse_mapping(["nope"], "--account-map")


def test_corpus_every_pipeline_with_known_stage_types_imports_and_validates() -> None:
    result = import_path(CORPUS, ImportOptions(application=None))
    files = {p.source.split("[")[0] for p in result.pipelines}
    assert len(result.pipelines) >= 25 and len(files) >= 25
    for pipeline in result.pipelines:
        if pipeline.valid:
            parse_pipeline(pipeline.pipeline)
            assert not spel_problems(pipeline.pipeline or {})
    expected_invalid = {"11-bake-vm", "16-git-notify", "20-spel-untranslatable", "21-edit-as-json", "23-templated",
                        "25-deploy-aws", "26-find-image-tags", "27-cluster-size"}  # fmt: skip
    invalid = {Path(p.source.split("[")[0]).stem for p in result.pipelines if not p.valid}
    assert invalid == expected_invalid
    summary = result.summary()
    assert summary == {"pipelines": 31, "imported": 25, "validated": 23, "untranslated_expressions": 4}


def test_corpus_covers_every_stage_type_the_issue_names() -> None:
    seen: set[str] = set()
    for _, data in [
        item for path in sorted(CORPUS.rglob("*.json")) for item in pipelines_in(json.loads(path.read_text()), "x")
    ]:
        seen |= {str(s.get("type")) for s in data.get("stages") or []}
    wanted = {"deployManifest", "runJobManifest", "manualJudgment", "wait", "checkPreconditions", "evaluateVariables",
              "pipeline", "webhook", "jenkins", "bake", "deploy", "findImage", "resizeServerGroup", "disableServerGroup",
              "enableServerGroup", "destroyServerGroup", "shrinkCluster", "scaleManifest", "patchManifest",
              "deleteManifest", "undoRolloutManifest"}  # fmt: skip
    assert wanted <= seen


# ---- the lint that submission and `gennaker validate` run -------------------------------------


def test_lint_rejects_leftover_spel_and_undeclared_parameters() -> None:
    pipeline = {
        "application": "shop", "name": "p", "parameters": [{"name": "tag"}],
        "stages": [
            {"refId": "cm", "type": "deployManifest", "manifests": [{"data": {"rate": "${ parameters.successRate }"}}]},
            {"refId": "w", "type": "wait", "waitTime": "${{ parameters.delay }}", "stageEnabled": {"expression": "parameters['gate'] == 'on'"}},
            {"refId": "ok", "type": "wait", "waitTime": "${{ parameters.tag }}"},
            {"refId": "raw", "type": "deployManifest", "skipExpressionEvaluation": True, "manifests": [{"x": "${ HOME }"}]},
        ],
    }  # fmt: skip
    problems = spel_problems(pipeline)
    paths = [p for p, _ in problems]
    assert paths == ["stages[cm].manifests[0].data.rate", "stages[w].waitTime", "stages[w].stageEnabled.expression"]
    assert "gennaker import spinnaker" in problems[0][1] and "${{ … }}" in problems[0][1]
    assert "parameters.delay" in problems[1][1] and "declared: tag" in problems[1][1]
    assert "parameters.gate" in problems[2][1]


def test_reject_spel_raises_the_error_submission_answers_with() -> None:
    from workflows.model import PipelineInvalid
    from workflows.spel_lint import reject_spel

    reject_spel({"parameters": [{"name": "a"}], "stages": [{"refId": "x", "waitTime": "${{ parameters.a }}"}]})
    with pytest.raises(PipelineInvalid) as raised:
        reject_spel({"stages": [{"refId": "x", "waitTime": "${ parameters.a }"}]})
    assert [e.field for e in raised.value.errors] == ["stages[x].waitTime"]


# ---- the CLI (its typer app, mounted as workers/cli.py mounts it) ------------------------------


def cli(*args: str, stdin: str | None = None) -> Any:
    import typer
    from typer.testing import CliRunner

    from workers.cli_import import import_app

    app = typer.Typer()
    app.command("version")(lambda: None)
    app.add_typer(import_app, name="import")
    return CliRunner().invoke(app, ["import", "spinnaker", *args], input=stdin)


def test_cli_writes_yaml_that_validates_and_exits_2_on_bad_input_or_strict(tmp_path: Path) -> None:
    import yaml

    done = cli(str(CORPUS / "shop"), "--out", str(tmp_path), "--account-map", "k8s-prod=prod")
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((tmp_path / "shop" / "deploy-manifest.yaml").read_text())
    assert parse_pipeline(written).stages[0].account == "prod"  # type: ignore[attr-defined]
    # 27 files: all but the templated one and the one without an application (Deck's "Edit as JSON")
    assert len(list((tmp_path / "shop").glob("*.yaml"))) == 25
    assert cli(str(CORPUS), "--strict", "--out", str(tmp_path / "strict")).exit_code == 2
    assert not (tmp_path / "strict").exists()  # strict writes nothing when something is untranslated
    assert cli(str(CORPUS / "shop" / "01-wait.json"), "--strict").exit_code == 0
    assert cli("-", stdin="{not json").exit_code == 2
    assert cli(str(tmp_path / "missing.json")).exit_code == 2
    assert cli(str(CORPUS / "shop" / "01-wait.json"), "--account-map", "nope").exit_code == 2
    piped = cli("-", stdin=(CORPUS / "shop" / "01-wait.json").read_text())
    assert piped.exit_code == 0 and "name: wait-a-bit" in piped.stdout

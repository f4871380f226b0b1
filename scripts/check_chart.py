#!/usr/bin/env python3
"""Checks of the Helm chart, offline, with no helm binary and no cluster.

Run through scripts/check-chart.sh, which installs the pinned tools into .venv-chart/:

* helm-python-sdk: Helm v4's own Go library (lint, render, values.schema.json, package)
  behind a C ABI, so the chart is linted, rendered and packaged by Helm itself;
* kubernetes-validate: the Kubernetes JSON schemas, to validate every rendered object in
  strict mode (unknown fields are errors);
* cloudcoil-models-prometheus-operator: models generated from the Prometheus Operator's CRDs,
  to validate the ServiceMonitor (the only object kubernetes-validate has no schema for);
* jsonschema: the examples' custom resources against our own CRDs' openAPIV3Schema.

What is checked:

1. `helm lint --strict` with the default values and every value set below (Helm's lint mode
   ignores the chart's `fail`s; rendering, below, does not), and appVersion == the binary's.
2. Rendering of each value set; every object valid against the Kubernetes schemas (strict) of
   the oldest Kubernetes the chart supports (kubeVersion in Chart.yaml) and of the newest the
   validator knows.
3. RBAC: the rendered ClusterRole / Roles grant exactly what `tributary rbac --output json`
   prints (the table tests/integration/rbac.rs checks against the operator's real requests); a
   ClusterRole only when watching all namespaces, a Role per watched namespace otherwise, the
   Lease Role only with leader election, and every binding names the Deployment's
   ServiceAccount.
4. The Deployment: pod and container security context (non-root, read-only root filesystem,
   no privilege escalation, every capability dropped, seccomp RuntimeDefault), probes on
   /healthz and /readyz, POD_NAME / POD_NAMESPACE from the downward API, and its arguments
   accepted by the real binary (`tributary <args> --help` exits 0 only if clap knows them all).
5. Wrong values fail at render time with a clear message (values.schema.json or the chart's
   own checks).
6. Every custom resource in examples/ is valid against the CRD schemas in crds/ (strict: no
   unknown field) and passes `tributary validate` (CEL rules and the checks a schema cannot
   express).
7. The chart packages, and the package renders the same as the directory.
8. deploy/tributary.yaml (the manifest for installing without Helm) is the chart rendered with
   the default values; `--update` rewrites it.
9. Monitoring: the chart's files/ copies of monitoring/prometheus/tributary-rules.yaml and
   monitoring/grafana/tributary.json are identical to them; with `metrics.prometheusRule` /
   `metrics.grafanaDashboard` on, the PrometheusRule carries exactly the rules file's groups and
   the ConfigMap (labelled grafana_dashboard: "1") exactly the dashboard; off, neither renders.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any, Callable

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHART = os.path.join(ROOT, "charts", "tributary")
RELEASE, NAMESPACE = "tributary", "tributary-system"
DEPLOY = os.path.join(ROOT, "deploy", "tributary.yaml")

# Value sets rendered, linted and checked. Each is what a user would pass with -f/--set.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "watch-namespaces": {"watchNamespaces": ["booking", "e-commerce"]},
    "service-monitor": {
        "metrics": {
            "port": 9090,
            "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kube-prometheus"}},
        }
    },
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kube-prometheus"},
                "runbookBaseUrl": "https://git.example.com/platform/tributary/-/blob/main/README.md",
            },
            "grafanaDashboard": {"enabled": True, "namespace": "monitoring", "labels": {"team": "platform"}},
        }
    },
    "no-leader-election": {"leaderElection": {"enabled": False}},
    "highly-available": {
        "replicaCount": 3,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 2, "maxUnavailable": None},
        "leaderElection": {"leaseName": "tributary-lock", "leaseDurationSeconds": 30},
        "priorityClassName": "system-cluster-critical",
    },
    "pdb-one-replica": {"podDisruptionBudget": {"enabled": True}},
    "customized": {
        "image": {
            "repository": "registry.example.com/platform/tributary",
            "tag": "0.1.0-rc.1",
            "pullPolicy": "Always",
            "pullSecrets": ["registry-credentials", {"name": "mirror-credentials"}],
        },
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "512Mi"}},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}
                    ]
                }
            }
        },
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
        "podAnnotations": {"example.com/team": "streaming"},
        "podLabels": {"example.com/cost-center": "platform"},
        "serviceAccount": {"create": False, "name": "platform-operators"},
        "logLevel": "debug",
        "logFormat": "text",
        "resyncSeconds": 60,
        "watchNamespaces": ["streaming"],
    },
}

# Values that must be refused at install time, and the words the refusal must contain.
WRONG_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"logFormat": "xml"}, "at '/logFormat': value must be one of 'json', 'text'"),
    ({"logLevel": "verbose"}, "at '/logLevel': value must be one of"),
    ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
    ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"image": {"tagg": "1.0"}}, "additional properties 'tagg' not allowed"),
    ({"metrics": {"port": 80}}, "at '/metrics/port': minimum: got 80, want 1"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "at '/watchNamespaces/0'"),
    ({"resyncSeconds": 0}, "at '/resyncSeconds': minimum: got 0, want 1"),
    ({"metrics": {"prometheusRule": {"enabled": "yes"}}}, "at '/metrics/prometheusRule/enabled': got string, want boolean"),
    ({"metrics": {"prometheusRule": {"runbookBaseUrl": "README.md#x"}}}, "at '/metrics/prometheusRule/runbookBaseUrl'"),
    ({"metrics": {"grafanaDashboard": {"namespace": "Not_A_Namespace"}}}, "at '/metrics/grafanaDashboard/namespace'"),
    ({"leaderElection": {"enabled": "yes"}}, "at '/leaderElection/enabled': got string, want boolean"),
    (
        {"replicaCount": 2, "leaderElection": {"enabled": False}},
        "replicaCount > 1 needs leaderElection.enabled=true",
    ),
    (
        {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
        "set minAvailable or maxUnavailable, not both",
    ),
    (
        {"serviceAccount": {"create": False}},
        "serviceAccount.name: name the existing ServiceAccount",
    ),
]

EXPECTED_SECURITY = {
    "pod": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
    "container": {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}

# Helm's install order (pkg/release/util/kind_sorter.go), for a readable deploy/tributary.yaml.
INSTALL_ORDER = [
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
    "Role", "RoleBinding", "Service", "Deployment", "PodDisruptionBudget", "ServiceMonitor",
    "PrometheusRule",
]


class Failure(Exception):
    pass


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def run(self, name: str, fn: Callable[[], str | None]) -> None:
        try:
            detail = fn()
        except Failure as e:
            self.failed.append(name)
            print(f"FAIL {name}\n     {str(e).replace(chr(10), chr(10) + '     ')}")
            return
        self.passed += 1
        print(f"ok   {name}" + (f": {detail}" if detail else ""))


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


# ----- rendering


@contextlib.contextmanager
def quiet_stderr():
    """Helm's lint mode turns the chart's `fail` calls into log lines on stderr ("funcMap fail")
    instead of errors; rendering, which is checked separately, does fail. Silence them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def render(values: dict[str, Any], chart_path: str = CHART) -> tuple[list[dict[str, Any]], str]:
    """The chart's objects (NOTES.txt aside) and its NOTES, rendered by Helm."""
    with helm.Chart.load(chart_path) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects, notes = [], ""
    for path in sorted(files):
        if path.endswith("NOTES.txt"):
            notes = files[path]
            continue
        for doc in yaml.safe_load_all(files[path]):
            if doc:
                doc.setdefault("_source", path)
                objects.append(doc)
    return objects, notes


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "_source"}


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    expect(len(found) == 1, f"expected one {kind}, rendered {len(found)}")
    return found[0]


def kn(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj['kind']} {ns + '/' if ns else ''}{meta.get('name')}"


# ----- Kubernetes schemas


def min_kube_version() -> str:
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        constraint = yaml.safe_load(f)["kubeVersion"]
    m = re.search(r">=\s*v?(\d+\.\d+)", constraint)
    expect(m is not None, f"cannot read the minimum Kubernetes version from kubeVersion {constraint!r}")
    return m.group(1)


def validate_servicemonitor(obj: dict[str, Any]) -> None:
    # kubernetes-validate has no schema for monitoring.coreos.com; the Prometheus Operator's
    # own CRDs, as pydantic models, do. Pydantic ignores unknown fields, so a round trip that
    # loses something means an unknown field.
    from cloudcoil.models.prometheus_operator import v1

    model_class = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}[obj["kind"]]
    try:
        model = model_class.model_validate(obj, strict=True)
    except Exception as e:  # pydantic.ValidationError
        raise Failure(f"{kn(obj)}: {e}")
    back = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    expect(back == obj, f"{kn(obj)}: unknown fields (not in the {obj['kind']} CRD): {diff(obj, back)}")


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{path}.{k}")
            elif k not in a:
                out.append(f"{path}.{k} (added)")
            else:
                out.extend(diff(a[k], b[k], f"{path}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def validate_k8s(objects: list[dict[str, Any]], versions: list[str]) -> list[str]:
    """Validates every object strictly; returns what was validated how."""
    notes = []
    for obj in objects:
        body = strip(obj)
        if body["apiVersion"] == "monitoring.coreos.com/v1":
            validate_servicemonitor(body)
            notes.append(f"{kn(obj)} against the Prometheus Operator CRD models")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(body, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                raise Failure(f"{kn(obj)} ({obj['_source']}) is invalid for Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                raise Failure(f"{kn(obj)}: no Kubernetes schema: {e.message}")
    return notes


# ----- RBAC


def normalize_rules(rules: list[dict[str, Any]]) -> list[tuple]:
    return sorted(
        (tuple(sorted(r.get("apiGroups", []))), tuple(sorted(r.get("resources", []))), tuple(sorted(r.get("verbs", []))))
        for r in rules
    )


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def same_rules(what: str, rendered: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    if normalize_rules(rendered) == normalize_rules(expected):
        return
    extra = sorted(grants(rendered) - grants(expected))
    missing = sorted(grants(expected) - grants(rendered))
    raise Failure(
        f"{what} differs from `tributary rbac --output json` (src/operator/rbac.rs); update "
        f"charts/tributary/templates/_helpers.tpl (tributary.rules / tributary.leaderElectionRules)\n"
        f"granted by the chart only: {extra}\nin src/operator/rbac.rs only: {missing}\n"
        f"(or the same grants split into rules differently)"
    )


def check_rbac(objects: list[dict[str, Any]], values: dict[str, Any], expected: dict[str, Any]) -> str:
    merged = merged_values(values)
    watched = merged["watchNamespaces"]
    leader = merged["leaderElection"]["enabled"]
    deployment = one(objects, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    cluster_roles = of_kind(objects, "ClusterRole")
    roles = of_kind(objects, "Role")
    lease_roles = [r for r in roles if r["metadata"]["name"].endswith("-leader-election")]
    watch_roles = [r for r in roles if r not in lease_roles]
    if watched:
        expect(not cluster_roles and not of_kind(objects, "ClusterRoleBinding"),
               "watching a list of namespaces must grant nothing cluster-wide")
        expect(sorted(r["metadata"]["namespace"] for r in watch_roles) == sorted(watched),
               f"expected one Role in each of {watched}, got {[kn(r) for r in watch_roles]}")
    else:
        expect(len(cluster_roles) == 1 and not watch_roles,
               f"watching all namespaces: one ClusterRole and no Role, got {[kn(r) for r in cluster_roles + watch_roles]}")
    for role in cluster_roles + watch_roles:
        same_rules(kn(role), role["rules"], expected["rules"])
    if leader:
        expect(len(lease_roles) == 1 and lease_roles[0]["metadata"]["namespace"] == NAMESPACE,
               "leader election: one Role in the release namespace for the Lease")
        same_rules(kn(lease_roles[0]), lease_roles[0]["rules"], expected["leaderElectionRules"])
    else:
        expect(not lease_roles, "no Lease permissions without leader election")
    roles_by_ref = {("ClusterRole", None, r["metadata"]["name"]) for r in cluster_roles} | {
        ("Role", r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles
    }
    bindings = of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding")
    expect(len(bindings) == len(cluster_roles) + len(roles), "one binding per role")
    for b in bindings:
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        expect((ref["kind"], ns, ref["name"]) in roles_by_ref, f"{kn(b)} refers to a role the chart does not render")
        expect(b["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
               f"{kn(b)} must bind exactly the Deployment's ServiceAccount {NAMESPACE}/{account}")
    accounts = of_kind(objects, "ServiceAccount")
    if merged["serviceAccount"]["create"]:
        expect([a["metadata"]["name"] for a in accounts] == [account], "the ServiceAccount the pod uses is rendered")
    else:
        expect(not accounts, "serviceAccount.create=false renders no ServiceAccount")
    scope = f"Roles in {', '.join(watched)}" if watched else "ClusterRole"
    return f"{scope}{' + Lease Role' if leader else ''} == tributary rbac"


# ----- monitoring

RULES = os.path.join(ROOT, "monitoring", "prometheus", "tributary-rules.yaml")
DASHBOARD = os.path.join(ROOT, "monitoring", "grafana", "tributary.json")
# Where the rules file's runbook links point; metrics.prometheusRule.runbookBaseUrl replaces it.
RUNBOOK_BASE = "https://github.com/tributary-operator/tributary/blob/main/README.md"


def check_monitoring_files() -> str:
    for source, name in ((RULES, "tributary-rules.yaml"), (DASHBOARD, "tributary.json")):
        copy = os.path.join(CHART, "files", name)
        expect(os.path.exists(copy) and open(copy).read() == open(source).read(),
               f"charts/tributary/files/{name} differs from {os.path.relpath(source, ROOT)}: copy it")
    return "files/ == monitoring/ (rules and dashboard)"


def check_monitoring(objects: list[dict[str, Any]], values: dict[str, Any]) -> str:
    merged = merged_values(values)["metrics"]
    rules = of_kind(objects, "PrometheusRule")
    dashboards = [o for o in of_kind(objects, "ConfigMap") if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if not merged["prometheusRule"]["enabled"]:
        expect(not rules, "metrics.prometheusRule.enabled=false renders no PrometheusRule")
    else:
        expect(len(rules) == 1, f"one PrometheusRule, rendered {len(rules)}")
        with open(RULES) as f:
            text = f.read()
        base = merged["prometheusRule"]["runbookBaseUrl"]
        if base:
            expect(RUNBOOK_BASE in text, f"the rules file's runbooks are not under {RUNBOOK_BASE}")
            text = text.replace(RUNBOOK_BASE, base)
        groups = yaml.safe_load(text)["groups"]
        expect(rules[0]["spec"]["groups"] == groups, "the PrometheusRule's groups differ from the rules file")
        urls = [r["annotations"]["runbook_url"] for g in rules[0]["spec"]["groups"] for r in g["rules"]]
        expect(all(u.startswith((base or RUNBOOK_BASE) + "#") for u in urls), f"runbook URLs {urls}")
        for k, v in merged["prometheusRule"]["labels"].items():
            expect(rules[0]["metadata"]["labels"].get(k) == v, f"PrometheusRule label {k}={v}")
    if not merged["grafanaDashboard"]["enabled"]:
        expect(not dashboards, "metrics.grafanaDashboard.enabled=false renders no dashboard ConfigMap")
    else:
        expect(len(dashboards) == 1, f"one dashboard ConfigMap, rendered {len(dashboards)}")
        cm = dashboards[0]
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        expect(json.loads(cm["data"]["tributary.json"]) == dashboard, "the ConfigMap's dashboard differs from the JSON")
        expect(cm["metadata"]["namespace"] == (merged["grafanaDashboard"]["namespace"] or NAMESPACE),
               f"dashboard ConfigMap namespace {cm['metadata']['namespace']}")
    on = [w for w, o in (("PrometheusRule", rules), ("dashboard ConfigMap", dashboards)) if o]
    return f"{' + '.join(on)} == monitoring/" if on else "no PrometheusRule, no dashboard (off)"


# ----- Deployment


def merged_values(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    return expected == actual


def check_deployment(objects: list[dict[str, Any]], values: dict[str, Any], binary: str) -> str:
    merged = merged_values(values)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    expect(len(pod["containers"]) == 1, "one container")
    container = pod["containers"][0]
    expect(subset(EXPECTED_SECURITY["pod"], pod.get("securityContext", {})),
           f"pod securityContext {pod.get('securityContext')} lacks {EXPECTED_SECURITY['pod']}")
    expect(subset(EXPECTED_SECURITY["container"], container.get("securityContext", {})),
           f"container securityContext {container.get('securityContext')} lacks {EXPECTED_SECURITY['container']}")
    expect(container["securityContext"].get("privileged") in (None, False), "not privileged")
    expect(container["securityContext"]["capabilities"].get("add") in (None, []), "no capability added")

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expect(ports == {"metrics": merged["metrics"]["port"]}, f"container ports {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        expect(get.get("path") == path and get.get("port") == "metrics", f"{probe} must GET {path} on port metrics, is {get}")
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container.get("env", [])}
    expect(env.get("POD_NAME") == "metadata.name" and env.get("POD_NAMESPACE") == "metadata.namespace",
           f"POD_NAME / POD_NAMESPACE from the downward API, got {env}")

    args = container["args"]
    expect(f"--log-format={merged['logFormat']}" in args and f"--log-level={merged['logLevel']}" in args, f"log flags in {args}")
    expect(f"--http-address=0.0.0.0:{merged['metrics']['port']}" in args, f"--http-address in {args}")
    expect(f"--resync-seconds={merged['resyncSeconds']}" in args, f"--resync-seconds in {args}")
    namespaces = [a.split("=", 1)[1] for a in args if a.startswith("--namespace=")]
    expect(namespaces == merged["watchNamespaces"], f"--namespace flags {namespaces} != watchNamespaces")
    leader = merged["leaderElection"]["enabled"]
    expect(("--leader-elect" in args) == leader, f"--leader-elect iff leaderElection.enabled, args {args}")
    if leader:
        expect(f"--leader-election-namespace={NAMESPACE}" in args, "the Lease is in the release namespace")
        expect(f"--leader-election-lease-seconds={merged['leaderElection']['leaseDurationSeconds']}" in args, "lease duration")
    else:
        expect(deployment["spec"].get("strategy", {}).get("type") == "Recreate",
               "without leader election the Deployment must be Recreate (never two operators at once)")
    # The binary is the judge of its own flags: clap refuses an unknown one before --help.
    run = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
    expect(run.returncode == 0, f"`tributary {' '.join(args)}` is refused by the binary:\n{run.stderr.strip()}")

    tag = merged["image"]["tag"] or chart_app_version()
    expect(container["image"] == f"{merged['image']['repository']}:{tag}", f"image {container['image']}")
    expect(container["imagePullPolicy"] == merged["image"]["pullPolicy"], "pull policy")

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    expect(subset(selector, labels), "the Deployment's selector matches its pods")
    service = one(objects, "Service")
    expect(subset(service["spec"]["selector"], labels), "the metrics Service selects the operator's pods")
    expect([(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("metrics", "metrics")],
           "the metrics Service targets the container's metrics port")
    monitors = of_kind(objects, "ServiceMonitor")
    expect(bool(monitors) == merged["metrics"]["serviceMonitor"]["enabled"], "ServiceMonitor iff metrics.serviceMonitor.enabled")
    for m in monitors:
        expect(subset(m["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]), "the ServiceMonitor selects the Service")
        expect([e["port"] for e in m["spec"]["endpoints"]] == ["metrics"], "the ServiceMonitor scrapes the metrics port")
        expect(subset(merged["metrics"]["serviceMonitor"]["labels"], m["metadata"]["labels"]), "ServiceMonitor labels")
    pdbs = of_kind(objects, "PodDisruptionBudget")
    want_pdb = merged["podDisruptionBudget"]["enabled"] or merged["replicaCount"] > 1
    expect(bool(pdbs) == want_pdb, "PodDisruptionBudget iff enabled or replicaCount > 1")
    for p in pdbs:
        expect(subset(p["spec"]["selector"]["matchLabels"], labels), "the PodDisruptionBudget selects the operator's pods")
    return (
        f"non-root 65532, read-only root, no escalation, drop ALL, seccomp RuntimeDefault; "
        f"args accepted by the binary; {len(objects)} objects"
    )


def chart_app_version() -> str:
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        return str(yaml.safe_load(f)["appVersion"])


# ----- examples against our CRDs


def openapi_to_jsonschema(node: Any, strict: bool = True) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema, strict: objects with properties refuse unknown
    fields unless x-kubernetes-preserve-unknown-fields says otherwise (as the API server
    would prune them, or refuse them with fieldValidation=Strict)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: openapi_to_jsonschema(v, strict) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = openapi_to_jsonschema(value, strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [openapi_to_jsonschema(v, strict) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "example", "externalDocs"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **{k: v for k, v in out.items() if k != "anyOf"}}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    if (
        strict
        and node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


# What a manifest in examples/ may say in metadata (strict, like the rest).
OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"},
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def load_crds() -> dict[tuple[str, str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "crds", "*.yaml"))):
        with open(path) as f:
            crd = yaml.safe_load(f)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
                # The API server fills these in for every kind; what a manifest may set of them:
                schema.setdefault("properties", {}).update({
                    "apiVersion": {"const": f"{group}/{version['name']}"},
                    "kind": {"const": kind},
                    "metadata": OBJECT_META,
                })
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                schemas[(group, version["name"], kind)] = schema
    return schemas


def check_examples(binary: str) -> str:
    schemas = load_crds()
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*.y*ml"), recursive=True))
    expect(bool(files), "examples/ holds no manifest")
    counted: dict[str, int] = {}
    for path in files:
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for i, doc in enumerate(docs, start=1):
            where = f"{rel}#{i} ({doc.get('kind')} {doc.get('metadata', {}).get('name')})"
            group, _, version = doc.get("apiVersion", "").rpartition("/")
            key = (group, version, doc.get("kind"))
            if key in schemas:
                validator = jsonschema.Draft7Validator(schemas[key])
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
                expect(not errors, f"{where} is invalid against crds/:\n" + "\n".join(
                    f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors))
            elif group.endswith("tributary.io"):
                raise Failure(f"{where}: no CRD in crds/ serves {doc.get('apiVersion')} {doc.get('kind')}")
            else:
                validate_k8s([{**doc, "_source": rel}], [kubernetes_validate.latest_version()])
            counted[doc["kind"]] = counted.get(doc["kind"], 0) + 1
    run = subprocess.run([binary, "validate", "-f", os.path.join(ROOT, "examples")], capture_output=True, text=True)
    expect(run.returncode == 0, f"`tributary validate -f examples/` failed:\n{run.stdout}{run.stderr}")
    return ", ".join(f"{n} {k}" for k, n in sorted(counted.items())) + " valid against crds/ (strict) and `tributary validate`"


# ----- the rendered manifest for kubectl


def relabel(node: Any) -> Any:
    """Says `managed-by: kubectl` where the chart says Helm: nothing of Helm's manages these."""
    if isinstance(node, dict):
        return {
            k: ("kubectl" if k == "app.kubernetes.io/managed-by" else relabel(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [relabel(v) for v in node]
    return node


def manifest_for_kubectl() -> str:
    objects, _ = render({})
    objects.sort(key=lambda o: (INSTALL_ORDER.index(o["kind"]) if o["kind"] in INSTALL_ORDER else len(INSTALL_ORDER), kn(o)))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    header = (
        "# Tributary's operator for `kubectl apply`, without Helm: the chart charts/tributary rendered\n"
        f"# with its default values (release {RELEASE}, namespace {NAMESPACE}). Install the CRDs first:\n"
        "#   kubectl apply --server-side -f crds/ && kubectl apply -f deploy/tributary.yaml\n"
        "# Generated by `scripts/check-chart.sh --update`; CI fails when it is not current. Do not edit.\n"
    )
    docs = [namespace] + [relabel(strip(o)) for o in objects]
    return header + "".join("---\n" + yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


# ----- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the tributary binary")
    parser.add_argument("--update", action="store_true", help="rewrite deploy/tributary.yaml")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    checks = Checks()
    print(f"helm-python-sdk: Helm {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()}); "
          f"kubernetes-validate {kubernetes_validate.__version__}")

    expected_rules: dict[str, Any] = {}

    def rbac_table() -> str:
        run = subprocess.run([binary, "rbac", "--output", "json"], capture_output=True, text=True)
        expect(run.returncode == 0, f"`tributary rbac --output json` failed: {run.stderr}")
        expected_rules.update(json.loads(run.stdout))
        return f"{len(expected_rules['rules'])} rules + {len(expected_rules['leaderElectionRules'])} leader-election rule(s)"

    checks.run("tributary rbac --output json", rbac_table)

    def crds_in_chart() -> str:
        repo = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(ROOT, "crds", "*.yaml"))}
        with helm.Chart.load(CHART) as chart:
            packaged = [os.path.basename(c["name"]) for c in chart.crds]
        expect(sorted(packaged) == sorted(repo), f"chart crds/ {sorted(packaged)} != crds/ {sorted(repo)}")
        for name, text in repo.items():
            with open(os.path.join(CHART, "crds", name)) as f:
                expect(f.read() == text, f"charts/tributary/crds/{name} differs from crds/{name}")
        return f"{len(repo)} CRDs, identical to crds/"

    checks.run("chart crds/", crds_in_chart)
    checks.run("chart files/ (monitoring)", check_monitoring_files)

    def app_version() -> str:
        run = subprocess.run([binary, "--version"], capture_output=True, text=True)
        version = run.stdout.split()[-1] if run.returncode == 0 and run.stdout.split() else "?"
        expect(version == chart_app_version(),
               f"Chart.yaml appVersion {chart_app_version()} != `tributary --version` {version}: the default image tag "
               f"would not be this build")
        return f"appVersion {version} == tributary --version"

    checks.run("Chart.yaml appVersion", app_version)

    latest = re.match(r"\d+\.\d+", kubernetes_validate.latest_version()).group(0)
    versions = [min_kube_version(), latest]
    for name, values in VALUE_SETS.items():
        def lint(values: dict[str, Any] = values) -> str:
            with quiet_stderr():
                report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{versions[-1]}.0")
            problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
            # Helm's INFO "icon is recommended" is no problem: the project has no icon.
            expect(not problems, "\n".join(m["error"].strip() for m in problems))
            return None

        checks.run(f"[{name}] helm lint --strict", lint)

        def rendered(values: dict[str, Any] = values) -> str:
            objects, notes = render(values)
            expect("What to apply next" in notes, "NOTES.txt tells what to apply next")
            extra = validate_k8s(objects, versions)
            kinds = sorted({o["kind"] for o in objects})
            return f"{len(objects)} objects ({', '.join(kinds)}) valid for Kubernetes {' and '.join(versions)} (strict)" + (
                f"; {'; '.join(extra)}" if extra else "")

        checks.run(f"[{name}] render + kubernetes-validate --strict", rendered)
        checks.run(f"[{name}] RBAC", lambda values=values: check_rbac(render(values)[0], values, expected_rules))
        checks.run(f"[{name}] Deployment", lambda values=values: check_deployment(render(values)[0], values, binary))
        checks.run(f"[{name}] monitoring", lambda values=values: check_monitoring(render(values)[0], values))

    def wrong_values() -> str:
        for values, words in WRONG_VALUES:
            try:
                render(values)
            except (helm.HelmValuesError, helm.HelmRenderError) as e:
                expect(words in str(e), f"{values} was refused, but the message lacks {words!r}:\n{e}")
                continue
            raise Failure(f"{values} rendered; it must be refused with {words!r}")
        return f"{len(WRONG_VALUES)} wrong value sets refused with a message naming the value"

    checks.run("wrong values are refused", wrong_values)
    checks.run("examples/ against our CRDs", lambda: check_examples(binary))

    def package() -> str:
        with tempfile.TemporaryDirectory() as out:
            archive = helm.package(CHART, destination=out)
            expect(os.path.exists(archive), f"no archive at {archive}")
            packaged, _ = render({}, archive)
            direct, _ = render({})
            strip_all = lambda objs: sorted((json.dumps(strip(o), sort_keys=True) for o in objs))
            expect(strip_all(packaged) == strip_all(direct), "the package renders differently from the directory")
            return f"{os.path.basename(archive)} ({os.path.getsize(archive)} bytes) renders like the directory"

    checks.run("helm package", package)

    def deploy_manifest() -> str:
        text = manifest_for_kubectl()
        docs = [d for d in yaml.safe_load_all(text) if d]
        validate_k8s([{**d, "_source": "deploy/tributary.yaml"} for d in docs], versions)
        if args.update:
            os.makedirs(os.path.dirname(DEPLOY), exist_ok=True)
            with open(DEPLOY, "w") as f:
                f.write(text)
            return "rewritten"
        current = open(DEPLOY).read() if os.path.exists(DEPLOY) else ""
        expect(current == text, "deploy/tributary.yaml is not the chart rendered with the default values: "
                                "run `scripts/check-chart.sh --update` and commit it")
        return f"current ({len(docs)} objects)"

    checks.run("deploy/tributary.yaml", deploy_manifest)

    if checks.failed:
        print(f"chart: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks failed: {', '.join(checks.failed)}")
        return 1
    print(f"chart: all {checks.passed} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

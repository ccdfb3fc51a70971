"""Offline Kubernetes checks: render kustomizations, validate every object, find objects.

kustomize and actionlint are built by tools/install-k8s-tools.sh into the same directory
these helpers look in (${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}). Built-in kinds are
validated with the schemas bundled in `kubernetes-validate`, custom resources with the CRD
JSON schemas in ../shared/crd-schemas (read from there, never copied into the repo).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import kubernetes_validate.utils  # type: ignore[import-untyped]
import yaml

from tests.support.platform import ROOT, SHARED

K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
CRD_SCHEMAS = SHARED / "crd-schemas"
# The oldest Kubernetes minor the manifests target (HPA ContainerResource is GA in 1.30);
# kubernetes-validate picks its newest bundled schema set that is not newer.
KUBERNETES_VERSION = "1.30.0"
APP_IDS = ("identity", "accounts", "transactions", "analytics", "partner")
# The apps whose sidecar loads the pub/sub component (components/local/pubsub.yaml is scoped
# to them): the payment-partner simulator publishes and subscribes to nothing, so it has no
# pub/sub component, no Kafka trust and no way to the brokers.
PUBSUB_APP_IDS = ("identity", "accounts", "transactions", "analytics")

Obj = dict[str, Any]

# kubernetes-validate re-reads and re-parses its 1.8 MB definitions file for every object;
# the files never change during a run, so parse each once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


def tools_dir() -> Path:
    configured = os.environ.get("KAYA787_TOOLS")
    return Path(configured) if configured else Path.home() / ".cache" / "kaya787" / "bin"


def tool(name: str) -> Path:
    """The path of a tool built by tools/install-k8s-tools.sh; a clear failure if missing."""
    path = tools_dir() / name
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"{name} is not installed in {tools_dir()}: run `bash tools/install-k8s-tools.sh` "
            "(or `make bootstrap`), or point KAYA787_TOOLS at the directory that has it"
        )
    return path


def render(path: Path) -> list[Obj]:
    """`kustomize build` of a kustomization directory, as a list of objects."""
    result = subprocess.run(
        [str(tool("kustomize")), "build", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {path} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def group_of(obj: Obj) -> str:
    api_version = str(obj["apiVersion"])
    return api_version.split("/")[0] if "/" in api_version else ""


def is_builtin(obj: Obj) -> bool:
    group = group_of(obj)
    return group == "" or "." not in group or group.endswith(".k8s.io")


def crd_schema_path(obj: Obj) -> Path:
    version = str(obj["apiVersion"]).split("/")[-1]
    return CRD_SCHEMAS / group_of(obj) / f"{str(obj['kind']).lower()}_{version}.json"


@functools.cache
def _crd_validator(path: Path) -> Any:
    if not path.is_file():
        raise AssertionError(f"no CRD schema {path} (see {CRD_SCHEMAS / 'README.md'})")
    schema = json.loads(path.read_text())
    # The catalog's schemas are data we do not own (one has a pattern Python's re rejects),
    # so they are used as they are, without a meta-schema check.
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft7Validator)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def validation_errors(obj: Obj) -> list[str]:
    """Every schema violation of one object (empty when it is valid)."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if is_builtin(obj):
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            return [f"{where}: {path}: {exc.message}"]
        except kubernetes_validate.SchemaNotFoundError as exc:
            return [f"{where}: {exc.message}"]
        return []
    schema_path = crd_schema_path(obj)
    validator = _crd_validator(schema_path)
    errors = [
        f"{where}: {'/'.join(str(p) for p in error.path)}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
    # CRD schemas leave the top level open; the API server would prune unknown fields there.
    known = set(validator.schema.get("properties", {})) | {"apiVersion", "kind", "metadata"}
    errors += [f"{where}: unknown top-level field {key!r}" for key in set(obj) - known]
    return errors


@dataclass(frozen=True)
class Objects:
    """Lookups over a rendered overlay."""

    items: tuple[Obj, ...]

    def of(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return [
            obj
            for obj in self.items
            if obj["kind"] == kind
            and (namespace is None or obj["metadata"].get("namespace") == namespace)
        ]

    def one(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        found = [obj for obj in self.of(kind, namespace) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name} in {namespace}, found {len(found)}"
        return found[0]

    def namespaces(self) -> set[str]:
        return {str(obj["metadata"]["name"]) for obj in self.of("Namespace")}


def app_namespace(app_id: str) -> str:
    return f"kaya787-{app_id}"


def metadata_values(component: Obj) -> dict[str, Any]:
    """A Dapr component's metadata as {name: value-or-secretKeyRef}."""
    items = cast(list[Obj], component["spec"].get("metadata") or [])
    return {item["name"]: item.get("value", item.get("secretKeyRef")) for item in items}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(paths: Iterable[Path]) -> Iterator[Obj]:
    for path in paths:
        yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


@functools.cache
def objects(overlay: str) -> Objects:
    """An overlay, rendered once per test session (the tests never mutate the objects)."""
    return Objects(tuple(render(K8S / "overlays" / overlay)))


def run_file() -> Obj:
    """dapr/dapr.yaml, the multi-app run file: the source of app-ids and ports."""
    return cast(Obj, load_yaml(ROOT / "dapr" / "dapr.yaml"))


def run_file_app(app_id: str) -> Obj:
    return next(app for app in run_file()["apps"] if app["appID"] == app_id)


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a shell env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value.strip().strip('"')
    return values


def pod_template(deployment: Obj) -> Obj:
    return cast(Obj, deployment["spec"]["template"])


def container(deployment: Obj, name: str = "app") -> Obj:
    containers = cast(list[Obj], pod_template(deployment)["spec"]["containers"])
    return next(c for c in containers if c["name"] == name)


def env_of(container_spec: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_spec.get("env", [])}


# --- Dapr access control -------------------------------------------------------------------


def _operation_matches(pattern: str, path: str) -> bool:
    """Dapr's operation patterns: `*` is one path segment, a trailing `/**` any depth."""
    regex = re.escape(pattern).replace(r"/\*\*", "(/.*)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def acl_allows(configuration: Obj, caller: str, namespace: str, verb: str, path: str) -> bool:
    """Whether a Dapr Configuration lets `caller` (in `namespace`) invoke `verb path`.

    The decision follows Dapr's: the caller's policy (matched on app id, namespace and trust
    domain) applies its operations, the most specific matching operation wins; otherwise
    the policy's, then the global, default action.
    """
    acl = configuration["spec"].get("accessControl")
    if not acl:
        return True
    action = acl.get("defaultAction", "deny")
    trust_domain = acl.get("trustDomain", "public")
    for policy in acl.get("policies", []):
        if (
            policy["appId"] == caller
            and policy.get("namespace") == namespace
            and policy.get("trustDomain", "public") == trust_domain
        ):
            action = policy.get("defaultAction", action)
            matching = [
                op
                for op in policy.get("operations", [])
                if _operation_matches(op["name"].lower(), path.lower())
            ]
            if matching:
                best = max(matching, key=lambda op: len(op["name"]))
                verbs = [str(v).upper() for v in best.get("httpVerb", [])]
                if verb.upper() in verbs or "*" in verbs:
                    action = best["action"]
    return str(action).lower() == "allow"


# --- NetworkPolicy evaluation ---------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def _peer_matches(peer: Obj, policy_namespace: str, other: Pod | None) -> bool:
    if "ipBlock" in peer:
        # Only traffic to or from outside the pod network (API server, load balancer).
        return other is None
    if other is None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _port_matches(rule: Obj, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports
    )


def _direction_allows(
    policies: list[Obj], pod: Pod, other: Pod | None, port: int, protocol: str, direction: str
) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == pod.namespace
        and selector_matches(policy["spec"]["podSelector"], pod.labels)
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(peer, pod.namespace, other) for peer in peers)
            if peer_ok and _port_matches(rule, port, protocol):
                return True
    return False


def traffic_allowed(
    policies: list[Obj],
    source: Pod | None,
    destination: Pod | None,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Both the source's egress and the destination's ingress policies allow the connection.

    `None` stands for something outside the pod network (a load balancer, the API server).
    """
    egress_ok = source is None or _direction_allows(
        policies, source, destination, port, protocol, "Egress"
    )
    ingress_ok = destination is None or _direction_allows(
        policies, destination, source, port, protocol, "Ingress"
    )
    return egress_ok and ingress_ok

"""`kaya787 new-service NAME`: add an app to the platform, every file docs/adding-a-service.md
names, so the new app runs with its sidecar on both profiles.

Each edit is a text change (comments and layout of the YAML stay as they are): the run
file and tye.yaml, the app's Configuration (its ACL) and identity's ACL (the JWKS and the
revocations for the new caller), its own state store folder in both profiles, the secret
store's and the pub/sub's scopes, the resiliency target, the public route (NGINX and Kong),
the workspace, and the app package with its fake and first test (scaffold_app.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaya787_launcher.paths import LauncherError
from kaya787_launcher.scaffold_app import app_files
from kaya787_launcher.topology import PROFILES, load_run_file

NAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")
RESERVED = {"kit", "launcher", "gateway", "ops", "dapr", "tests"}
REVOCATIONS_TOPIC = "identity.token-revoked.v1"


@dataclass(frozen=True)
class NewPorts:
    """The next free slot of the run file's port plan (app 81xx, sidecar 35xx, …)."""

    app: int
    http: int
    grpc: int
    internal_grpc: int
    metrics: int


def next_ports(root: Path) -> NewPorts:
    apps = load_run_file(root / "dapr" / "dapr.yaml").apps
    slot = max(a.app_port - 8100 for a in apps if a.app_port is not None) + 1
    if slot > 79:  # 8180+ is the control plane's
        raise LauncherError("the run file's port plan is full")
    return NewPorts(8100 + slot, 3500 + slot, 50100 + slot, 50200 + slot, 9200 + slot)


def _insert_before(text: str, marker: str, block: str, where: str) -> str:
    at = text.find(marker)
    if at < 0:
        raise LauncherError(f"{where}: cannot find {marker.strip()!r} to add the service")
    return text[:at] + block + text[at:]


def _replace_once(text: str, marker: str, replacement: str, where: str) -> str:
    if marker not in text:
        raise LauncherError(f"{where}: cannot find {marker.strip()!r} to add the service")
    return text.replace(marker, replacement, 1)


def _append(text: str, block: str) -> str:
    return text.rstrip("\n") + "\n" + block


def run_file_entry(name: str, ports: NewPorts) -> str:
    return (
        f"  - appID: {name}\n"
        f"    appDirPath: ../apps/{name}\n"
        f"    resourcesPaths: [../components/local, ../components/local/state/{name},"
        " ./resiliency]\n"
        f"    configFilePath: ./configs/{name}.yaml\n"
        f"    appPort: {ports.app}\n"
        f"    daprHTTPPort: {ports.http}\n"
        f"    daprGRPCPort: {ports.grpc}\n"
        f"    daprInternalGRPCPort: {ports.internal_grpc}\n"
        f"    metricsPort: {ports.metrics}\n"
        f'    command: ["../../.venv/bin/python", "-m", "kaya787_{name}"]\n'
    )


def tye(text: str, name: str, ports: NewPorts) -> str:
    sidecar = (
        f"      {name}:\n        app-id: {name}\n        http-port: {ports.http}\n"
        f"        grpc-port: {ports.grpc}\n        metrics-port: {ports.metrics}\n"
    )
    service = (
        f"  - name: {name}\n    executable: .venv/bin/python\n    args: -m kaya787_{name}\n"
        f"    workingDirectory: apps/{name}\n    env:\n      - name: APP_ID\n"
        f'        value: {name}\n      - name: APP_PORT\n        value: "{ports.app}"\n'
        f"    bindings:\n      - protocol: http\n        port: {ports.app}\n"
    )
    return _append(_replace_once(text, "\nservices:\n", f"\n{sidecar}services:\n", "tye"), service)


def _policy(caller: str, operations: list[tuple[str, str]]) -> str:
    lines = [
        f"      - appId: {caller}\n        defaultAction: deny\n        trustDomain: public\n"
        "        namespace: default\n        operations:\n"
    ]
    lines += [
        f"          - name: {path}\n            httpVerb: [{verbs}]\n            action: allow\n"
        for path, verbs in operations
    ]
    return "".join(lines)


def configuration(partner_config: str, name: str) -> str:
    """The shared parts of every app's Configuration (a test keeps them identical), with an
    ACL that lets only the gateway in, on the public route and the health checks."""
    body = partner_config[
        partner_config.index("apiVersion:") : partner_config.index("  accessControl:")
    ]
    body = body.replace("  name: partner\n", f"  name: {name}\n", 1)
    header = (
        f"# Sidecar Configuration of `{name}`. Shared parts are identical in every app's file (a\n"
        "# test checks); accessControl is the callee's list of who may call what: only the\n"
        f"# gateway calls {name}, on its public route (gateway/routes.yaml).\n"
    )
    acl = "  accessControl:\n    defaultAction: deny\n    trustDomain: public\n    policies:\n"
    operations = [(f"/api/v1/{name}/**", "GET, POST"), ("/healthz", "GET"), ("/readyz", "GET")]
    return header + body + acl + _policy("gateway", operations)


def identity_acl(text: str, name: str) -> str:
    """A caller of identity like the other apps: the JWKS and the revocations only."""
    operations = [
        ("/.well-known/jwks.json", "GET"),
        ("/internal/revocations", "GET"),
        ("/internal/revocations/**", "GET"),
    ]
    return _append(text, _policy(name, operations))


def state_store(profile: str, name: str) -> str:
    head = (
        f"# The state store of {name}: its own, loaded by its sidecar only (components/"
        f"{profile}/state/{name}/).\n"
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n"
    )
    if profile == "local":
        spec = (
            "  type: state.redis\n  version: v1\n  metadata:\n"
            "    - name: redisHost\n      value: 127.0.0.1:6380\n"
            "    - name: redisPassword\n      secretKeyRef:\n        name: redis-password\n"
            "        key: redis-password\n"
        )
    else:
        spec = (
            "  type: state.postgresql\n  version: v2\n  metadata:\n"
            "    - name: connectionString\n      secretKeyRef:\n"
            "        name: postgres-connection-string\n        key: postgres-connection-string\n"
            f"    - name: tablePrefix\n      value: {name}_\n"
            f"    - name: metadataTableName\n      value: {name}_dapr_metadata\n"
            "    - name: timeout\n      value: 20s\n"
        )
    return head + spec + f"auth:\n  secretStore: secretstore\nscopes:\n  - {name}\n"


def _scoped(text: str, name: str) -> str:
    if not re.search(r"^scopes:\n(  - .+\n?)+\Z", text, re.M):
        raise LauncherError("the component does not end with its scopes list")
    return _append(text, f"  - {name}\n")


def pubsub(text: str, name: str) -> str:
    """Publishes nothing; subscribes to the revocations (its token verifier's feed)."""
    for key, topics in (("publishingScopes", ""), ("subscriptionScopes", REVOCATIONS_TOPIC)):
        pattern = re.compile(rf'(- name: {key}\n\s+value: "[^"]*)"')
        text, count = pattern.subn(rf'\g<1>;{name}={topics}"', text)
        if count != 1:
            raise LauncherError(f"pubsub: no {key} to add {name} to")
    return _scoped(text, name)


def _app_target(text: str, entry: str, where: str) -> str:
    lines = text.splitlines(keepends=True)
    targets = [i for i, line in enumerate(lines) if re.match(r"^      \w+: \{ timeout: ", line)]
    if not targets:
        raise LauncherError(f"{where}: no app targets found")
    lines.insert(targets[-1] + 1, f"      {entry}\n")
    return "".join(lines)


def resiliency(text: str, name: str) -> str:
    """The new sidecar among the apps' (it retries its idempotent calls), and its peers'
    policy for calling it."""
    text, count = re.subn(
        r"^(scopes: \[[^\]\n]+)\]$", rf"\g<1>, {name}]", text, count=1, flags=re.M
    )
    if count != 1:
        raise LauncherError("resiliency: no one-line `scopes: [...]` to add the service to")
    return _app_target(text, f"{name}: {{ timeout: call, retry: call-retry }}", "resiliency")


def edge_resiliency(text: str, name: str) -> str:
    """The gateway's timeout for calling it (no retries at the edge)."""
    return _app_target(text, f"{name}: {{ timeout: call }}", "edge resiliency")


def route(name: str) -> str:
    return f"  - {{ path: /api/v1/{name}/, match: prefix, app: {name}, auth: true }}\n"


def kong(text: str, name: str) -> str:
    service = (
        f"  - name: {name}\n    url: http://localhost:3500/v1.0/invoke/{name}/method\n"
        f'    routes:\n      - {{ name: {name}, paths: ["/api/v1/{name}/"], strip_path: false }}\n'
        "    plugins:\n"
        "      - { name: jwt, config: { key_claim_name: iss, claims_to_verify: [exp, nbf] } }\n"
    )
    return _replace_once(text, "\n\nconsumers:\n", f"\n\n{service}\nconsumers:\n", "kong.yml")


def workspace(text: str, name: str) -> str:
    text = _insert_before(
        text, '    "kaya787-launcher",\n', f'    "kaya787-{name}",\n', "pyproject"
    )
    return _insert_before(
        text,
        "kaya787-launcher = { workspace = true }",
        f"kaya787-{name} = {{ workspace = true }}\n",
        "pyproject",
    )


def _edit(root: Path, relative: str, change: Callable[[str], str]) -> tuple[str, str]:
    return relative, change((root / relative).read_text())


def plan_files(root: Path, name: str) -> dict[str, str]:
    """Relative path -> full new text of every file the service adds or changes."""
    if not NAME.match(name) or name in RESERVED:
        raise LauncherError(f"{name!r}: a service name is 2-31 lowercase letters and digits")
    known = [a.app_id for a in load_run_file(root / "dapr" / "dapr.yaml").apps]
    if name in known or (root / "apps" / name).exists():
        raise LauncherError(f"{name} exists already")
    ports = next_ports(root)
    partner = (root / "dapr" / "configs" / "partner.yaml").read_text()
    files = dict(
        [
            _edit(
                root,
                "dapr/dapr.yaml",
                lambda t: _insert_before(
                    t, "  - appID: gateway\n", run_file_entry(name, ports), "run file"
                ),
            ),
            _edit(root, "tye.yaml", lambda t: tye(t, name, ports)),
            _edit(root, "dapr/configs/identity.yaml", lambda t: identity_acl(t, name)),
            _edit(root, "dapr/resiliency/resiliency.yaml", lambda t: resiliency(t, name)),
            _edit(root, "dapr/resiliency/edge.yaml", lambda t: edge_resiliency(t, name)),
            _edit(root, "gateway/routes.yaml", lambda t: _append(t, route(name))),
            _edit(root, "gateway/kong.yml", lambda t: kong(t, name)),
            _edit(root, "pyproject.toml", lambda t: workspace(t, name)),
        ]
    )
    files[f"dapr/configs/{name}.yaml"] = configuration(partner, name)
    for profile in PROFILES:
        folder = f"components/{profile}"
        files[f"{folder}/state/{name}/statestore.yaml"] = state_store(profile, name)
        files.update([_edit(root, f"{folder}/secretstore.yaml", lambda t: _scoped(t, name))])
        files.update([_edit(root, f"{folder}/pubsub.yaml", lambda t: pubsub(t, name))])
    files.update(app_files(name))
    return files


def new_service(root: Path, name: str) -> list[str]:
    """Write the service's files; the relative paths written, in order."""
    files = plan_files(root, name)  # every edit is computed before anything is written
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)

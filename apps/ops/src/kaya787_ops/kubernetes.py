"""Discovery on Kubernetes, as the Dapr dashboard did it: apps are the Deployments whose
pod template carries `dapr.io/enabled: "true"`, the control plane is what runs in
`dapr-system`, components and Configurations are Dapr's custom resources. Read-only: the
console's ServiceAccount may only get/list/watch (k8s/base/ops/rbac.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from kaya787_ops.domain import (
    AppTarget,
    certificate_info,
    component_document,
    configuration_summary,
    resiliency_for,
)
from kaya787_ops.ports import Unavailable

DAPR_NAMESPACE = "dapr-system"
CONTROL_PLANE = {
    "sentry": ("deployments", "dapr-sentry"),
    "placement": ("statefulsets", "dapr-placement-server"),
    "scheduler": ("statefulsets", "dapr-scheduler-server"),
}
# Where each app's sidecar token is mounted for the console (k8s/base/ops/deployment.yaml):
# the sidecars require it on every API call, /v1.0/metadata included.
SIDECAR_TOKENS = Path("/var/run/secrets/kaya787/sidecar-tokens")
DAPR_API = "/apis/dapr.io"


class KubernetesApi:
    def __init__(self, url: str, token_file: Path, ca_file: Path, timeout: float) -> None:
        self._url = url.rstrip("/")
        self._token_file = token_file
        self._http = httpx.AsyncClient(
            timeout=timeout, verify=str(ca_file) if ca_file.is_file() else True
        )

    async def get(self, path: str) -> dict[str, Any]:
        try:
            token = self._token_file.read_text().strip()  # re-read: projected tokens rotate
            response = await self._http.get(
                f"{self._url}{path}", headers={"authorization": f"Bearer {token}"}
            )
        except (OSError, httpx.HTTPError) as exc:
            raise Unavailable(f"Kubernetes API: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise Unavailable(f"Kubernetes API {path}: HTTP {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def close(self) -> None:
        await self._http.aclose()


def _annotations(deployment: dict[str, Any]) -> dict[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("annotations") or {})


class KubernetesDirectory:
    def __init__(self, api: KubernetesApi) -> None:
        self._api = api
        self._deployments: dict[str, dict[str, Any]] = {}

    async def targets(self) -> list[AppTarget]:
        listed = await self._api.get("/apis/apps/v1/deployments")
        found = []
        for deployment in listed.get("items") or []:
            notes = _annotations(deployment)
            if notes.get("dapr.io/enabled") != "true":
                continue
            meta = deployment.get("metadata") or {}
            app_id = notes.get("dapr.io/app-id") or str(meta.get("name", ""))
            namespace = str(meta.get("namespace", "default"))
            self._deployments[app_id] = deployment
            app_port = notes.get("dapr.io/app-port")
            found.append(
                AppTarget(
                    app_id=app_id,
                    # The `<app-id>-dapr` Service the injector creates: 80 -> the HTTP API.
                    http_url=f"http://{app_id}-dapr.{namespace}.svc:80",
                    app_url=None,  # pod-local only: the sidecar's app health says it
                    ports={"app": int(app_port)} if app_port and app_port.isdigit() else {},
                    config_file=notes.get("dapr.io/config"),
                    replicas=int((deployment.get("spec") or {}).get("replicas") or 1),
                )
            )
        return found

    async def processes(self, target: AppTarget) -> dict[str, Any]:
        deployment = self._deployments.get(target.app_id) or {}
        status = deployment.get("status") or {}
        meta = deployment.get("metadata") or {}
        return {
            "deployment": {
                "namespace": meta.get("namespace"),
                "created": meta.get("creationTimestamp"),
                "replicas": status.get("replicas", 0),
                "ready": status.get("readyReplicas", 0),
                "updated": status.get("updatedReplicas", 0),
            }
        }

    def sidecar_token(self, app_id: str) -> str | None:
        try:
            return (SIDECAR_TOKENS / app_id).read_text().strip() or None
        except OSError:
            return None


class KubernetesControlPlane:
    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    async def services(self) -> list[dict[str, Any]]:
        found = []
        for name, (kind, object_name) in CONTROL_PLANE.items():
            try:
                obj = await self._api.get(
                    f"/apis/apps/v1/namespaces/{DAPR_NAMESPACE}/{kind}/{object_name}"
                )
            except Unavailable as exc:
                found.append({"name": name, "healthy": False, "error": str(exc)})
                continue
            status = obj.get("status") or {}
            containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers"
            ) or [{}]
            image = str(containers[0].get("image", ""))
            found.append(
                {
                    "name": name,
                    "healthy": status.get("readyReplicas", 0) == status.get("replicas", -1),
                    "version": image.rsplit(":", 1)[-1] if ":" in image else image,
                    "replicas": status.get("replicas", 0),
                }
            )
        return found

    async def certificates(self, targets: list[AppTarget]) -> list[dict[str, Any]]:
        bundle = await self._api.get(
            f"/api/v1/namespaces/{DAPR_NAMESPACE}/configmaps/dapr-trust-bundle"
        )
        pem = str((bundle.get("data") or {}).get("ca.crt", ""))
        return [certificate_info(pem.encode(), "trust anchors")] if pem else []


class KubernetesResources:
    """Dapr's custom resources, shown as the YAML an operator would edit."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    async def _items(self, plural: str, version: str = "v1alpha1") -> list[dict[str, Any]]:
        listed = await self._api.get(f"{DAPR_API}/{version}/{plural}")
        items: list[dict[str, Any]] = []
        for item in listed.get("items") or []:
            (item.get("metadata") or {}).pop("managedFields", None)
            items.append(item)
        return items

    async def components(self) -> list[dict[str, Any]]:
        found = []
        for item in await self._items("components"):
            where = f"{item['metadata'].get('namespace')}/{item['metadata'].get('name')}"
            document = component_document(item, where, yaml.safe_dump(item, sort_keys=False))
            if document is not None:
                found.append(document)
        return found

    async def configurations(self) -> list[dict[str, Any]]:
        found = []
        for item in await self._items("configurations"):
            where = f"{item['metadata'].get('namespace')}/{item['metadata'].get('name')}"
            text = yaml.safe_dump(item, sort_keys=False)
            found.append({**configuration_summary(item), "file": where, "yaml": text})
        return found

    async def configuration_of(self, target: AppTarget) -> dict[str, Any] | None:
        for item in await self._items("configurations"):
            if item["metadata"].get("name") == target.config_file:
                return configuration_summary(item)
        return None

    async def resiliency_of(self, app_id: str) -> dict[str, Any]:
        applied: dict[str, Any] = {}
        for item in await self._items("resiliencies"):
            applied.update(resiliency_for(item, app_id))
        return applied

    async def log_lines(self, app_id: str) -> list[str]:
        return []  # logs go to the cluster's log stack (Fluent Bit -> Elasticsearch) there

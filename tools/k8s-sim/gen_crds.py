"""Generate the CustomResourceDefinitions the simulator installs (k8s/sim/crds/).

The manifests in k8s/ use custom resources of operators (KEDA, Kong, Strimzi, CloudNativePG,
cert-manager, Prometheus Operator, ECK, Jaeger; Dapr's come with the Dapr module the simulator
builds its control plane from, see tools/k8s-sim/build.sh). On a real cluster the operators'
Helm charts install the CRDs; the simulator has no Helm charts, so it installs CRDs generated
from the per-version JSON Schemas of the public CRDs catalog by datree.io (MIT licence, see
k8s/sim/crds/LICENSE): each schema becomes the `openAPIV3Schema` of one served version.

Run once when a schema or the table below changes, then commit the output:

    python3 tools/k8s-sim/gen_crds.py SCHEMA_DIR [OUT_DIR]

SCHEMA_DIR has the catalog's layout `<group>/<kind>_<version>.json`. Needs PyYAML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

# (group, lower-case kind) -> (Kind, plural, scope, storage version)
CRDS: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("keda.sh", "scaledobject"): ("ScaledObject", "scaledobjects", "Namespaced", "v1alpha1"),
    ("keda.sh", "triggerauthentication"): (
        "TriggerAuthentication",
        "triggerauthentications",
        "Namespaced",
        "v1alpha1",
    ),
    ("configuration.konghq.com", "kongplugin"): ("KongPlugin", "kongplugins", "Namespaced", "v1"),
    ("configuration.konghq.com", "kongclusterplugin"): (
        "KongClusterPlugin",
        "kongclusterplugins",
        "Cluster",
        "v1",
    ),
    ("configuration.konghq.com", "kongconsumer"): (
        "KongConsumer",
        "kongconsumers",
        "Namespaced",
        "v1",
    ),
    ("configuration.konghq.com", "kongingress"): (
        "KongIngress",
        "kongingresses",
        "Namespaced",
        "v1",
    ),
    ("kafka.strimzi.io", "kafka"): ("Kafka", "kafkas", "Namespaced", "v1"),
    ("kafka.strimzi.io", "kafkanodepool"): ("KafkaNodePool", "kafkanodepools", "Namespaced", "v1"),
    ("kafka.strimzi.io", "kafkatopic"): ("KafkaTopic", "kafkatopics", "Namespaced", "v1"),
    ("postgresql.cnpg.io", "cluster"): ("Cluster", "clusters", "Namespaced", "v1"),
    ("cert-manager.io", "certificate"): ("Certificate", "certificates", "Namespaced", "v1"),
    ("cert-manager.io", "issuer"): ("Issuer", "issuers", "Namespaced", "v1"),
    ("cert-manager.io", "clusterissuer"): ("ClusterIssuer", "clusterissuers", "Cluster", "v1"),
    ("monitoring.coreos.com", "podmonitor"): ("PodMonitor", "podmonitors", "Namespaced", "v1"),
    ("monitoring.coreos.com", "servicemonitor"): (
        "ServiceMonitor",
        "servicemonitors",
        "Namespaced",
        "v1",
    ),
    ("monitoring.coreos.com", "prometheusrule"): (
        "PrometheusRule",
        "prometheusrules",
        "Namespaced",
        "v1",
    ),
    ("elasticsearch.k8s.elastic.co", "elasticsearch"): (
        "Elasticsearch",
        "elasticsearches",
        "Namespaced",
        "v1",
    ),
    ("kibana.k8s.elastic.co", "kibana"): ("Kibana", "kibanas", "Namespaced", "v1"),
    ("beat.k8s.elastic.co", "beat"): ("Beat", "beats", "Namespaced", "v1beta1"),
    ("jaegertracing.io", "jaeger"): ("Jaeger", "jaegers", "Namespaced", "v1"),
}


def structural(node: Any) -> Any:
    """The catalog's schemas are the CRDs' own, made strict for offline validators by
    `additionalProperties: false` beside `properties`; a CRD schema may not have both (the
    API server prunes unknown fields, and rejects them with field validation Strict)."""
    if isinstance(node, list):
        return [structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: structural(value) for key, value in node.items()}
    if "properties" in out and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def version_schema(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = structural(json.loads(path.read_text()))
    props = schema.setdefault("properties", {})
    # The API server owns metadata's schema; a CRD may only leave it a plain object.
    props["metadata"] = {"type": "object"}
    return schema


def crd(group: str, kind_lc: str, versions: dict[str, Path]) -> dict[str, Any]:
    kind, plural, scope, storage = CRDS[(group, kind_lc)]
    if storage not in versions:
        raise SystemExit(f"{group}/{kind}: storage version {storage} has no schema")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "kaya787-k8s-sim"},
        },
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "scope": scope,
            "versions": [
                {
                    "name": name,
                    "served": True,
                    "storage": name == storage,
                    "schema": {"openAPIV3Schema": version_schema(path)},
                    "subresources": {"status": {}},
                }
                for name, path in sorted(versions.items())
            ],
        },
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    src = Path(argv[1])
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).parents[2] / "k8s" / "sim" / "crds"
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(src.glob("*/*.json")):
        kind_lc, _, version = path.stem.rpartition("_")
        key = (path.parent.name, kind_lc)
        if key in CRDS:
            found.setdefault(key, {})[version] = path
    missing = sorted(set(CRDS) - set(found))
    if missing:
        raise SystemExit(f"no schema in {src} for {missing}")
    out.mkdir(parents=True, exist_ok=True)
    by_group: dict[str, list[dict[str, Any]]] = {}
    for (group, kind_lc), versions in sorted(found.items()):
        by_group.setdefault(group, []).append(crd(group, kind_lc, versions))
    for group, docs in by_group.items():
        header = (
            f"# Generated by tools/k8s-sim/gen_crds.py from the datree.io CRDs catalog's JSON "
            f"schemas ({group}); MIT licence, see LICENSE. Do not edit.\n"
        )
        body = yaml.safe_dump_all(docs, sort_keys=False, width=100)
        (out / f"{group}.yaml").write_text(header + body)
        print(f"{out / (group + '.yaml')}: {', '.join(d['spec']['names']['kind'] for d in docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The local Kubernetes simulator (tools/k8s-sim/sim.sh) as the tests see it: kubectl with
the simulator's admin kubeconfig, and bounded polling of the real API server."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support.k8s import Obj, tool
from tests.support.platform import ROOT

SIM_STATE = ROOT / "var" / "k8s-sim"
KUBECONFIG = SIM_STATE / "admin.kubeconfig"
CRDS = ROOT / "k8s" / "sim" / "crds"
KUBE_VERSION = "v1.32.13"

T = TypeVar("T")


class KubectlError(AssertionError):
    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


class Kube:
    """kubectl against the simulator; every call is bounded by a timeout."""

    def __init__(self, kubeconfig: Path = KUBECONFIG) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl = tool("kubectl")

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        argv = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise KubectlError(list(args), result.stderr)
        return result.stdout

    def reachable(self) -> bool:
        if not self.kubeconfig.is_file():
            return False
        try:
            return self.run("get", "--raw", "/readyz", timeout=5.0).strip() == "ok"
        except (AssertionError, subprocess.TimeoutExpired):
            return False

    def get(self, *args: str) -> Obj:
        data: Obj = json.loads(self.run("get", *args, "-o", "json"))
        return data

    def items(self, *args: str) -> list[Obj]:
        items: list[Obj] = self.get(*args)["items"]
        return items

    def apply(self, objs: Iterable[Obj], *extra: str) -> str:
        """Server-side apply with strict field validation: unknown or duplicate fields fail."""
        docs = list(objs)
        if not docs:
            return ""
        text = yaml.safe_dump_all(docs, sort_keys=False)
        return self.run(
            "apply",
            "--server-side",
            "--field-manager",
            "kaya787-tests",
            "--force-conflicts",
            "--validate=strict",
            *extra,
            "-f",
            "-",
            stdin=text,
            timeout=180.0,
        )

    def apply_files(self, paths: Iterable[Path]) -> None:
        """Server-side apply of YAML files, in one call (large CRDs exceed the annotation
        limit of client-side apply)."""
        files = [arg for path in paths for arg in ("-f", str(path))]
        self.run("apply", "--server-side", "--field-manager", "kaya787-tests", *files, timeout=300)


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float = 90.0, every: float = 0.25
) -> T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`
    with the last value or error it gave, so a failure says what was still missing."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            value, last = None, exc
        else:
            if value is not None and value is not False:
                return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")
        time.sleep(every)


def condition(obj: Obj, kind: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def pod_ready(pod: Obj) -> bool:
    return condition(pod, "Ready") == "True" and "deletionTimestamp" not in pod["metadata"]

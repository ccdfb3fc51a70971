"""Every app Deployment shuts down and rolls without dropping requests: a preStop sleep
while the endpoints go, the app's drain and grace set, a termination grace period longer
than the app's and the sidecar's shutdowns, readiness on /readyz, maxUnavailable 0, and
the Dapr annotations that keep the sidecar serving while its app drains."""

from __future__ import annotations

import re

import pytest
from kaya787_kit.settings import ServiceSettings

from tests.support.k8s import (
    APP_IDS,
    OVERLAYS,
    Obj,
    Objects,
    app_namespace,
    container,
    env_of,
    objects,
    pod_template,
)

# What the app's lifespan shutdown (sidecar client, spans) may take after the grace period.
LIFESPAN_SHUTDOWN = 5


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def _deployment(objs: Objects, app_id: str) -> Obj:
    return objs.one("Deployment", app_id, app_namespace(app_id))


def _seconds(duration: str) -> float:
    """A Go duration as Dapr's annotation takes it: 25s, 1m30s, 500ms."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def _app_shutdown(objs: Objects, app_id: str) -> tuple[float, float, float]:
    """(preStop sleep, drain, grace) of the app container, with the settings' defaults."""
    app = container(_deployment(objs, app_id))
    pre_stop = float(app["lifecycle"]["preStop"]["sleep"]["seconds"])
    env = env_of(app)
    fields = ServiceSettings.model_fields
    drain = float(env.get("SHUTDOWN_DRAIN_SECONDS", fields["shutdown_drain_seconds"].default))
    grace = float(env.get("SHUTDOWN_GRACE_SECONDS", fields["shutdown_grace_seconds"].default))
    return pre_stop, drain, grace


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_app_sleeps_before_sigterm_then_drains_and_has_a_grace_period(
    objs: Objects, app_id: str
) -> None:
    pre_stop, drain, grace = _app_shutdown(objs, app_id)
    # The endpoint removal spreads while the pod sleeps (no `sleep` binary needed: the
    # kubelet's own sleep action), and callers that resolved it earlier meet the drain.
    assert 3 <= pre_stop <= 15
    assert drain >= 2
    assert grace >= 5
    env = env_of(container(_deployment(objs, app_id)))
    assert {"SHUTDOWN_DRAIN_SECONDS", "SHUTDOWN_GRACE_SECONDS"} <= set(env)


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_termination_grace_period_outlasts_the_app_and_its_sidecar(
    objs: Objects, app_id: str
) -> None:
    template = pod_template(_deployment(objs, app_id))
    period = template["spec"]["terminationGracePeriodSeconds"]
    annotations = template["metadata"]["annotations"]
    pre_stop, drain, grace = _app_shutdown(objs, app_id)
    app_takes = pre_stop + drain + grace + LIFESPAN_SHUTDOWN
    block = _seconds(annotations["dapr.io/block-shutdown-duration"])
    sidecar_grace = float(annotations["dapr.io/graceful-shutdown-seconds"])
    assert period > app_takes
    assert period > block + sidecar_grace
    # The sidecar keeps serving (its API for the app, invocations for callers) until the
    # app has drained and finished; only its subscriptions stop at once.
    assert block >= pre_stop + drain + grace
    assert sidecar_grace >= 5


@pytest.mark.parametrize("app_id", APP_IDS)
def test_rollouts_add_before_they_remove_and_wait_for_readyz(objs: Objects, app_id: str) -> None:
    deployment = _deployment(objs, app_id)
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1
    readiness = container(deployment)["readinessProbe"]["exec"]["command"]
    assert "/readyz'" in readiness[-1]
    # Liveness stays on /healthz, which answers 200 while draining: a draining pod is not
    # restarted, and its sidecar's app health check does not cut it off.
    liveness = container(deployment)["livenessProbe"]["exec"]["command"]
    assert "/healthz'" in liveness[-1]
    annotations = pod_template(deployment)["metadata"]["annotations"]
    assert annotations["dapr.io/app-health-check-path"] == "/healthz"


def test_durations_are_read_as_dapr_writes_them() -> None:
    assert _seconds("25s") == 25
    assert _seconds("1m30s") == 90
    assert _seconds("500ms") == 0.5
    with pytest.raises(AssertionError):
        _seconds("25")

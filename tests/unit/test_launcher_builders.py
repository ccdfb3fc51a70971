"""The launcher's process builders are pure: given what they need, they describe a process
and touch nothing; the files a process needs appear only when its prepare step runs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from kaya787_launcher import controlplane, devsecrets, redis_server, sidecars
from kaya787_launcher.gateway import EdgeLimits, load_routes, nginx
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.plan import Plan
from kaya787_launcher.topology import ControlPlanePorts, load_run_file

from tests.support.platform import ROOT

PORTS = ControlPlanePorts()
BIN = Path("/opt/dapr/bin")
TOKENS = sidecars.AppTokens("d" * 43, "a" * 43)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """The repository's files with an empty var/ of its own."""
    for name in ("dapr", "components", "apps", "gateway", "observability", "tools"):
        (tmp_path / name).symlink_to(ROOT / name)
    return Layout(tmp_path)


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _plan(layout: Layout, profile: str = "local", sampling: str | None = None) -> Plan:
    return Plan(
        layout=layout,
        run_file=load_run_file(layout.run_file),
        profile=profile,
        ports=PORTS,
        bin_dir=BIN,
        secrets=devsecrets.read(layout),
        sampling=sampling,
        limits=EdgeLimits(),
    )


@pytest.mark.parametrize("profile", ["local", "kafka"])
def test_planning_the_whole_platform_writes_nothing(layout: Layout, profile: str) -> None:
    tiers = _plan(layout, profile).tiers()
    assert sum(len(tier) for tier in tiers) > 10
    assert not layout.var.exists()


def test_control_plane_binds_loopback_and_takes_certificates_from_sentry(layout: Layout) -> None:
    sentry = list(controlplane.sentry(layout, PORTS, BIN).spec.argv)
    assert sentry[0] == str(BIN / "sentry")
    assert _flag(sentry, "--issuer-credentials") == str(layout.certs)
    assert _flag(sentry, "--listen-address") == "127.0.0.1"
    for build in (controlplane.placement, controlplane.scheduler):
        argv = list(build(layout, PORTS, BIN).spec.argv)
        assert "--tls-enabled" in argv
        assert _flag(argv, "--sentry-address") == f"127.0.0.1:{PORTS.sentry}"
        assert _flag(argv, "--trust-anchors-file") == str(layout.certs / "ca.crt")
        assert _flag(argv, "--healthz-listen-address") == "127.0.0.1"
        assert _flag(argv, "--metrics-listen-address") == "127.0.0.1"


def test_the_scheduler_data_folder_is_made_by_its_prepare_step(layout: Layout) -> None:
    managed = controlplane.scheduler(layout, PORTS, BIN)
    data = Path(_flag(list(managed.spec.argv), "--etcd-data-dir"))
    assert not data.exists()
    assert managed.prepare is not None
    managed.prepare()
    assert data.is_dir()


def test_a_sidecar_gets_its_apps_tokens_and_the_profiles_components(layout: Layout) -> None:
    run_file = load_run_file(layout.run_file)
    app = run_file.app("identity")
    managed = sidecars.sidecar(
        layout,
        run_file,
        app,
        profile="kafka",
        ports=PORTS,
        bin_dir=BIN,
        tokens=TOKENS,
        trust_anchors="-----BEGIN CERTIFICATE-----",
        sampling=None,
    )
    argv = list(managed.spec.argv)
    assert managed.spec.name == "daprd-identity"
    assert _flag(argv, "--app-id") == "identity"
    assert _flag(argv, "--config") == str(app.config_file)
    paths = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--resources-path"]
    assert paths[:2] == [
        str(ROOT / "components" / "kafka"),
        str(ROOT / "components" / "kafka" / "state" / "identity"),
    ]
    assert managed.spec.env["DAPR_API_TOKEN"] == TOKENS.dapr_api_token
    assert managed.spec.env["APP_API_TOKEN"] == TOKENS.app_api_token
    assert managed.spec.env["DAPR_TRUST_ANCHORS"] == "-----BEGIN CERTIFICATE-----"
    assert managed.prepare is not None
    managed.prepare()  # nothing to render without a sampling override
    assert not layout.var.exists()


def test_a_sampling_override_renders_the_configuration_only_when_prepared(
    layout: Layout,
) -> None:
    plan = _plan(layout, sampling="0.25")
    app = plan.run_file.app("accounts")
    managed = plan.sidecar(app)
    rendered = Path(_flag(list(managed.spec.argv), "--config"))
    assert rendered == layout.run / "configs" / "accounts.yaml"
    assert not rendered.exists()
    assert managed.prepare is not None
    managed.prepare()
    assert 'samplingRate: "0.25"' in rendered.read_text()
    assert plan.app(app).spec.env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"


def test_sampling_must_be_a_rate() -> None:
    assert sidecars.trace_sampling({}) is None
    assert sidecars.trace_sampling({sidecars.TRACE_SAMPLING_ENV: "0"}) == "0"
    for bad in ("2", "-0.1", "half"):
        with pytest.raises(LauncherError, match="from 0 to 1"):
            sidecars.trace_sampling({sidecars.TRACE_SAMPLING_ENV: bad})


def test_an_app_runs_its_command_with_its_ports_and_tokens(layout: Layout) -> None:
    app = load_run_file(layout.run_file).app("transactions")
    spec = sidecars.app_process(app, tokens=TOKENS, sampling=None).spec
    assert spec.name == "app-transactions"
    assert Path(spec.argv[0]).is_absolute()
    assert spec.argv[1:] == ["-m", "kaya787_transactions"]
    assert spec.env["APP_PORT"] == str(app.app_port)
    assert spec.env["DAPR_HTTP_PORT"] == str(app.http_port)
    assert spec.env["RECONCILE_AFTER_SECONDS"] == "30"  # the run file's own env
    assert "OTEL_TRACES_SAMPLER_ARG" not in spec.env
    gateway = load_run_file(layout.run_file).app("gateway")
    with pytest.raises(LauncherError, match="without an app"):
        sidecars.app_process(gateway, tokens=TOKENS, sampling=None)


def test_redis_config_is_private_and_written_by_prepare(layout: Layout) -> None:
    managed = redis_server.redis(layout, 6380, "s3cret-password")
    conf = redis_server.config_path(layout)
    assert list(managed.spec.argv)[-1] == str(conf)
    assert not layout.var.exists()
    assert managed.prepare is not None
    managed.prepare()
    text = conf.read_text()
    assert "bind 127.0.0.1\n" in text
    assert "requirepass s3cret-password\n" in text
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    before = conf.stat().st_mtime_ns
    managed.prepare()  # unchanged: not rewritten
    assert conf.stat().st_mtime_ns == before


def test_nginx_config_holds_the_gateway_token_and_is_written_by_prepare(layout: Layout) -> None:
    routes = load_routes(layout.root / "gateway" / "routes.yaml")
    managed = nginx(
        layout, routes, sidecar_http_port=3500, dapr_api_token="t" * 43, limits=EdgeLimits()
    )
    conf = Path(_flag(list(managed.spec.argv), "-c"))
    assert not layout.var.exists()
    assert managed.prepare is not None
    managed.prepare()
    text = conf.read_text()
    assert "t" * 43 in text
    assert "127.0.0.1:3500" in text
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def test_each_nginx_start_begins_with_an_empty_jwks_cache(layout: Layout) -> None:
    # A JWKS cached by an earlier NGINX (the other profile's identity) would refuse valid
    # tokens as "unknown key" until it expired.
    routes = load_routes(layout.root / "gateway" / "routes.yaml")
    managed = nginx(
        layout, routes, sidecar_http_port=3500, dapr_api_token="t" * 43, limits=EdgeLimits()
    )
    conf = Path(_flag(list(managed.spec.argv), "-c"))
    stale = conf.parent / "jwks-cache" / "a" / "cached-jwks"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    assert managed.prepare is not None
    managed.prepare()
    assert not stale.exists()
    assert f"{conf.parent}/jwks-cache " in conf.read_text()


def test_missing_secrets_plan_as_empty_values(layout: Layout) -> None:
    secrets = devsecrets.read(layout)
    assert secrets.token("identity", "dapr_api_token") == ""
    assert secrets.secret("redis-password") == ""
    assert secrets.trust_anchors == ""
    devsecrets.ensure_all(layout, ["identity"])
    secrets = devsecrets.read(layout)
    assert len(secrets.token("identity", "dapr_api_token")) >= 32
    assert secrets.secret("redis-password")
    assert secrets.trust_anchors.startswith("-----BEGIN CERTIFICATE-----")

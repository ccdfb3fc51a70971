"""The run file is the single source of app-ids and ports; check it is consistent."""

from pathlib import Path

import pytest
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import load_run_file

from tests.support.platform import ROOT


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    """A stack planned on the real run file, with its var/ in a temporary folder."""
    for name in ("dapr", "components", "apps", "gateway"):
        (tmp_path / name).symlink_to(ROOT / name)
    return Stack(Layout(tmp_path), say=lambda _: None)


def test_every_app_in_the_run_file_exists_as_a_package() -> None:
    run_file = load_run_file(ROOT / "dapr" / "dapr.yaml")
    app_ids = [a.app_id for a in run_file.apps]
    # The platform's apps; one added with `kaya787 new-service` comes before the gateway.
    assert {"identity", "accounts", "transactions", "analytics", "partner"} <= set(app_ids)
    assert app_ids[-1] == "gateway"
    for app in run_file.apps:
        assert app.config_file == ROOT / "dapr" / "configs" / f"{app.app_id}.yaml"
        assert app.config_file.is_file()
        if not app.has_app:
            assert app.app_id == "gateway"
            continue
        assert app.command is not None
        module = app.command[-1]
        assert (app.app_dir / "src" / module / "__main__.py").is_file(), module
        for path in app.resources_paths:
            assert path.is_dir(), path
        assert app.resources_paths[1].name == app.app_id  # its own state store folder


def test_no_two_processes_share_a_port(stack: Stack) -> None:
    ports: dict[int, str] = {}
    for tier in stack.tiers():
        for managed in tier:
            for what, port in managed.ports.items():
                assert port not in ports, f"{what} and {ports.get(port)} both use {port}"
                ports[port] = what
    # Prometheus has its default port (no daprd takes it); 8080 is the public gateway's.
    assert ports[9090] == "prometheus"
    assert ports[8080] == "gateway"


def test_malformed_run_file_fails_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "dapr.yaml"
    bad.write_text("version: 1\napps:\n  - appID: x\n    command: [python]\n")
    with pytest.raises(LauncherError, match="appPort"):
        load_run_file(bad)
    bad.write_text("version: 2\n")
    with pytest.raises(LauncherError, match="version: 1"):
        load_run_file(bad)


def test_sidecars_run_with_mtls_and_loopback_only(stack: Stack) -> None:
    stack.prepare()  # the per-app tokens, as `up` makes them
    sidecar = stack.sidecar(stack.run_file.app("accounts")).spec
    argv = list(sidecar.argv)
    assert "--enable-mtls" in argv
    assert argv[argv.index("--sentry-address") + 1] == "127.0.0.1:50001"
    for flag in (
        "--dapr-listen-addresses",
        "--dapr-internal-grpc-listen-address",
        "--metrics-listen-address",
        "--app-channel-address",
    ):
        assert argv[argv.index(flag) + 1] == "127.0.0.1", flag
    assert "DAPR_TRUST_ANCHORS" in sidecar.env
    assert sidecar.env["DAPR_API_TOKEN"] != stack.tokens_for("identity")["dapr_api_token"]


# The run-file keys the Dapr CLI (v1.18) understands: yaml tags of its RunFileConfig,
# SharedRunConfig and RunConfig. A key outside this set would be silently ignored by
# `dapr run -f`, so the two launchers would drift apart.
CLI_TOP_LEVEL = {"version", "common", "apps", "name"}
CLI_SHARED = {
    "configFilePath",
    "appProtocol",
    "apiListenAddresses",
    "enableProfiling",
    "logLevel",
    "appMaxConcurrency",
    "placementHostAddress",
    "resourcesPath",
    "resourcesPaths",
    "appSSL",
    "maxBodySize",
    "readBufferSize",
    "enableAppHealthCheck",
    "appHealthCheckPath",
    "appHealthProbeInterval",
    "appHealthProbeTimeout",
    "appHealthThreshold",
    "enableApiLogging",
    "runtimePath",
    "env",
    "daprdLogDestination",
    "appLogDestination",
    "schedulerHostAddress",
}
CLI_APP = CLI_SHARED | {
    "appID",
    "appChannelAddress",
    "appPort",
    "daprHTTPPort",
    "daprGRPCPort",
    "profilePort",
    "command",
    "metricsPort",
    "unixDomainSocket",
    "daprInternalGRPCPort",
    "appDirPath",
    "containerImage",
    "containerImagePullPolicy",
    "createService",
}


def test_run_file_uses_only_keys_the_dapr_cli_knows() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "dapr" / "dapr.yaml").read_text())
    assert set(doc) <= CLI_TOP_LEVEL
    assert set(doc["common"]) <= CLI_SHARED
    for app in doc["apps"]:
        assert set(app) <= CLI_APP, set(app) - CLI_APP


def test_preflight_names_a_taken_port_and_starts_nothing(stack: Stack) -> None:
    import socket
    from dataclasses import replace

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack.ports = replace(stack.ports, redis=taken)
        with pytest.raises(LauncherError, match=f"redis \\({taken}\\)"):
            stack.preflight(stack.tiers())
    assert stack.table.running() == []


def test_profile_swaps_only_the_component_folders(stack: Stack) -> None:
    from kaya787_launcher.topology import with_profile

    app = stack.run_file.app("identity")
    components = app.resources_paths[0].parent
    swapped = with_profile(app.resources_paths, components, "kafka")
    assert swapped[0] == components / "kafka"
    assert swapped[1] == components / "kafka" / "state" / "identity"
    assert swapped[2] == app.resources_paths[2]  # resiliency stays

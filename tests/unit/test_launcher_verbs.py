"""The launcher's dapr-CLI verbs without a platform: the parser, the output formats, the
refusals of bad input (the verbs themselves run against the platform in e2e)."""

from __future__ import annotations

import json

import pytest
import yaml
from kaya787_launcher import dapr_verbs, verb_calls, verb_output
from kaya787_launcher.cli import _parser
from kaya787_launcher.paths import LauncherError

ROWS = [
    {"app_id": "identity", "http_port": 3501, "app_pid": 10, "scopes": ["a", "b"]},
    {"app_id": "gateway", "http_port": 3500, "app_pid": None, "scopes": []},
]


def test_every_verb_parses_with_the_dapr_clis_flags() -> None:
    parser = _parser()
    args = parser.parse_args(["invoke", "-a", "identity", "-m", "healthz", "-v", "GET"])
    assert (args.target, args.method, args.verb, args.via) == (
        "identity",
        "healthz",
        "GET",
        "gateway",
    )
    args = parser.parse_args(["publish", "-i", "identity", "-t", "t.v1", "-d", "{}"])
    assert (args.publish_app_id, args.pubsub, args.topic) == ("identity", "pubsub", "t.v1")
    args = parser.parse_args(["logs", "--app-id", "accounts", "-f", "--sidecar"])
    assert (args.app_id_flag, args.follow, args.sidecar) == ("accounts", True, True)
    args = parser.parse_args(["mtls", "expiry", "-o", "json"])
    assert (args.mtls_command, args.output) == ("expiry", "json")
    minimal = {
        "logs": ["x"],
        "stop": ["x"],
        "start": ["x"],
        "invoke": ["-a", "x", "-m", "y"],
        "publish": ["-i", "x", "-t", "y"],
    }
    for verb in dapr_verbs.VERBS:
        assert parser.parse_args([verb, *minimal.get(verb, [])]).command == verb
    with pytest.raises(SystemExit):
        parser.parse_args(["stop", "accounts", "--sidecar", "--app-only"])
    with pytest.raises(SystemExit):
        parser.parse_args(["list", "-o", "xml"])


def test_render_table_json_and_yaml() -> None:
    table = verb_output.render(ROWS, "table", ("app_id", "app_pid", "scopes"))
    lines = table.splitlines()
    assert lines[0].split() == ["APP_ID", "APP_PID", "SCOPES"]
    assert lines[1].split() == ["identity", "10", "a,b"]
    assert lines[2].split() == ["gateway", "-", "-"]
    assert json.loads(verb_output.render(ROWS, "json")) == ROWS
    assert yaml.safe_load(verb_output.render(ROWS, "yaml")) == ROWS


def test_data_must_be_json_and_given_once() -> None:
    assert verb_calls.body('{"a": 1}', None) == b'{"a": 1}'
    assert verb_calls.body(None, None) is None
    with pytest.raises(LauncherError, match="not JSON"):
        verb_calls.body("{nope", None)
    with pytest.raises(LauncherError, match="not both"):
        verb_calls.body("{}", "file.json")

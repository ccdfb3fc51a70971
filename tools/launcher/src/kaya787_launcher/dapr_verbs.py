"""The Dapr CLI's daily verbs for the local platform, with the CLI's names and flags where
they make sense: list, logs, invoke, publish, stop, start, mtls [expiry], components,
configurations, dashboard. Every listing prints `-o table` (default), `json` or `yaml`."""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from kaya787_launcher.gateway import GATEWAY_APP_ID
from kaya787_launcher.ops_console import OPS_CONSOLE_URL
from kaya787_launcher.paths import LauncherError
from kaya787_launcher.stack import Stack
from kaya787_launcher.verb_calls import body, dashboard, invoke, logs, publish, start, stop
from kaya787_launcher.verb_listings import (
    LIST_COLUMNS,
    components,
    configurations,
    list_apps,
    mtls_expiry,
    mtls_status,
)
from kaya787_launcher.verb_output import FORMATS, Out, render

VERBS = (
    "list",
    "logs",
    "invoke",
    "publish",
    "stop",
    "start",
    "mtls",
    "components",
    "configurations",
    "dashboard",
)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=FORMATS, default="table", help="table (default), json or yaml"
    )


def _app_id(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("app_id", nargs="?", help=f"the app-id {what}")
    parser.add_argument("-a", "--app-id", dest="app_id_flag", help="the same, as the dapr CLI")


def add_parsers(sub: Any) -> None:
    """Add the verbs to `kaya787`'s subcommands."""
    _output(sub.add_parser("list", help="every app-id: ports, pids, age (like `dapr list`)"))

    logs = sub.add_parser("logs", help="print an app's log (or its sidecar's with --sidecar)")
    _app_id(logs, "whose log to print")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--sidecar", action="store_true", help="the daprd sidecar's log")
    logs.add_argument("--tail", type=int, default=100, help="lines to start with (default 100)")
    logs.add_argument(
        "--follow-seconds", type=float, default=None, help=argparse.SUPPRESS
    )  # bounded follow, for tests

    invoke = sub.add_parser(
        "invoke",
        help="call an app's method through a sidecar (default: the gateway's, whose access"
        " rules are the public ones)",
    )
    invoke.add_argument("-a", "--app-id", dest="target", required=True, help="callee app-id")
    invoke.add_argument("-m", "--method", required=True, help="the path, e.g. healthz")
    invoke.add_argument("-v", "--verb", default="POST", help="HTTP verb (default POST)")
    invoke.add_argument("-d", "--data", default=None, help="JSON body")
    invoke.add_argument("--data-file", default=None, help="file with the JSON body")
    invoke.add_argument(
        "--header", action="append", default=[], help="extra header 'name: value' (repeat)"
    )
    invoke.add_argument(
        "--via", default=GATEWAY_APP_ID, help="the calling sidecar's app-id (default gateway)"
    )

    publish = sub.add_parser("publish", help="publish a CloudEvent through a sidecar")
    publish.add_argument(
        "-i", "--publish-app-id", required=True, help="the app whose sidecar publishes"
    )
    publish.add_argument("-p", "--pubsub", default="pubsub", help="pub/sub component name")
    publish.add_argument("-t", "--topic", required=True)
    publish.add_argument("-d", "--data", default=None, help="JSON payload")
    publish.add_argument("--data-file", default=None, help="file with the JSON payload")
    publish.add_argument(
        "-m", "--metadata", default=None, help="JSON object of publish metadata (partitionKey…)"
    )

    for verb, text in (
        ("stop", "stop an app and its sidecar (or one of them)"),
        ("start", "start an app's sidecar and the app (or one of them) and wait until healthy"),
    ):
        cmd = sub.add_parser(verb, help=text)
        _app_id(cmd, f"to {verb}")
        part = cmd.add_mutually_exclusive_group()
        part.add_argument("--sidecar", action="store_true", help="the daprd sidecar only")
        part.add_argument("--app-only", action="store_true", help="the app only")
        if verb == "stop":
            cmd.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")

    mtls = sub.add_parser("mtls", help="is mTLS on for every sidecar (from its Configuration)")
    _output(mtls)
    mtls_sub = mtls.add_subparsers(dest="mtls_command")
    expiry = mtls_sub.add_parser(
        "expiry",
        help="when the trust anchors, Sentry's issuer and each sidecar's workload"
        " certificate expire",
    )
    _output(expiry)

    _output(sub.add_parser("components", help="the running profile's components and scopes"))
    _output(sub.add_parser("configurations", help="every Dapr Configuration: mTLS, tracing, ACL"))
    dashboard = sub.add_parser(
        "dashboard", help=f"start the ops console alone (if not running) at {OPS_CONSOLE_URL}"
    )
    dashboard.add_argument("--timeout", type=float, default=60.0)


# ---------------------------------------------------------------------- dispatch
def _which(args: argparse.Namespace) -> str:
    app_id = args.app_id_flag or args.app_id
    if not app_id:
        raise LauncherError(f"`kaya787 {args.command}` needs an app-id")
    return str(app_id)


def _print_response(response: httpx.Response, out: Out) -> int:
    if response.content:
        out(response.text)
    if response.status_code >= 400:
        raise LauncherError(f"HTTP {response.status_code}")
    return 0


def run(stack: Stack, args: argparse.Namespace, out: Out) -> int:
    command = args.command
    fmt = getattr(args, "output", "table")
    if command == "list":
        out(render(list_apps(stack), fmt, LIST_COLUMNS if fmt == "table" else None))
    elif command == "logs":
        logs(
            stack,
            _which(args),
            sidecar=args.sidecar,
            follow=args.follow,
            tail=args.tail,
            out=out,
            follow_seconds=args.follow_seconds,
        )
    elif command == "invoke":
        response = invoke(
            stack,
            args.target,
            args.method,
            verb=args.verb,
            data=body(args.data, args.data_file),
            headers=args.header,
            via=args.via,
        )
        return _print_response(response, out)
    elif command == "publish":
        response = publish(
            stack,
            args.publish_app_id,
            args.pubsub,
            args.topic,
            body(args.data, args.data_file),
            args.metadata,
        )
        _print_response(response, out)
        out(f"event published to {args.pubsub}/{args.topic}")
    elif command == "stop":
        stop(
            stack,
            _which(args),
            sidecar=args.sidecar,
            app_only=args.app_only,
            kill=args.kill,
            out=out,
        )
    elif command == "start":
        start(stack, _which(args), sidecar=args.sidecar, app_only=args.app_only, out=out)
    elif command == "mtls":
        if args.mtls_command == "expiry":
            out(
                render(mtls_expiry(stack), fmt, ("certificate", "subject", "expires", "expires_in"))
            )
        else:
            out(render(mtls_status(stack), fmt))
    elif command == "components":
        out(render(components(stack), fmt, ("name", "type", "version", "scopes", "file")))
    elif command == "configurations":
        columns = ("name", "used_by", "mtls", "sampling_rate", "acl_default", "acl_rules", "file")
        out(render(configurations(stack), fmt, columns if fmt == "table" else None))
    elif command == "dashboard":
        out(dashboard(stack, args.timeout, out))
    return 0

"""`kaya787`: run the local platform (what `make up` / `make down` call)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from kaya787_launcher import dapr_verbs, devsecrets, scaffold
from kaya787_launcher.operations import rotate_signing_key
from kaya787_launcher.paths import LauncherError, Layout, find_root
from kaya787_launcher.report import describe, sidecar_metadata
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import PROFILES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaya787",
        description=(
            "Run the KAYA787 platform locally: the profile's broker and state store (local:"
            " Redis; kafka: Kafka + PostgreSQL), the Dapr control plane (sentry, placement,"
            " scheduler), every app of dapr/dapr.yaml with its daprd sidecar, the NGINX"
            " gateway, Jaeger and Prometheus, all on 127.0.0.1 with mTLS between sidecars."
            " Processes are tracked by pid files in var/run, so `down` works from any shell."
            " KAYA787_TRACE_SAMPLING=0..1 overrides the trace sampling of sidecars and apps."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start everything and wait until every part is healthy")
    up.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="infrastructure profile (components/<profile>): local = Redis Streams + Redis"
        " state, kafka = Kafka + PostgreSQL; default: local (or the running one)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="seconds to wait for each part to become healthy (default 90)",
    )
    up.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached; Ctrl-C or SIGTERM stops everything",
    )
    up.add_argument(
        "--apps",
        default="",
        help="comma-separated app-ids to start (default: every app in dapr/dapr.yaml);"
        " brokers, control plane, Jaeger and Prometheus always start",
    )
    up.add_argument(
        "--no-apps",
        action="store_true",
        help="start only the brokers, the control plane, Jaeger and Prometheus"
        " (e.g. for `dapr run -f dapr/`)",
    )

    sub.add_parser("down", help="stop exactly what `up` started (by pid) and wait for it")
    status = sub.add_parser("status", help="show each process, its ports and its log file")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    meta = sub.add_parser("metadata", help="print a sidecar's /v1.0/metadata (uses its token)")
    meta.add_argument("app_id")

    restart = sub.add_parser(
        "restart",
        help="restart one app or its sidecar: stop, then start (for fault tests), or"
        " --rolling (no failed request)",
    )
    restart.add_argument("app_id")
    restart.add_argument("--sidecar", action="store_true", help="the daprd sidecar, not the app")
    restart.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    restart.add_argument(
        "--rolling",
        action="store_true",
        help="the app, without a gap (not with --sidecar or --kill): start a new process on"
        " the same port (SO_REUSEPORT), wait until it listens, then SIGTERM the old one,"
        " which drains (docs/operations.md)",
    )
    # The Dapr CLI's verbs: list, logs, invoke, publish, stop, start, mtls, components, …
    dapr_verbs.add_parsers(sub)

    env = sub.add_parser(
        "env", help="print `export` lines to run an app by hand against its sidecar"
    )
    env.add_argument("app_id")

    sub.add_parser(
        "rotate-signing-key",
        help="operator: switch identity to its next signing key (old tokens stay valid)",
    )
    sub.add_parser("secrets", help="generate dev tokens, secrets and Sentry certs if missing")
    new = sub.add_parser(
        "new-service",
        help="add an app to the platform: its package, run-file entry, sidecar Configuration"
        " (ACL), state store, scopes, public route and a first test (docs/adding-a-service.md)",
    )
    new.add_argument("name", help="app-id and package suffix (kaya787_<name>): a-z and 0-9")
    return parser


NEXT_STEPS = "uv lock && make bootstrap, then make lint typecheck unit, then make up"


def _say(message: str) -> None:
    print(message, flush=True)


def _run(args: argparse.Namespace) -> int:
    layout = Layout(find_root())
    stack = Stack(layout, profile=getattr(args, "profile", None), say=_say)
    if args.command == "up":
        only: list[str] | None = [a.strip() for a in args.apps.split(",") if a.strip()] or None
        if args.no_apps:
            only = []
        stack.up(timeout=args.timeout, only=only)
        print(describe(stack), flush=True)
        if args.foreground:
            _hold(stack)
    elif args.command == "down":
        stopped = stack.down()
        print(f"stopped {len(stopped)} processes; nothing of KAYA787 is running", flush=True)
    elif args.command == "status":
        rows = stack.status()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                pid = row["pid"] or "-"
                print(f"{row['name']:<22} {row['state']:<9} pid {pid!s:<8} {row['log']}")
        return 0 if all(row["state"] == "ready" for row in rows) else 3
    elif args.command == "metadata":
        print(json.dumps(sidecar_metadata(stack, args.app_id), indent=2))
    elif args.command == "restart":
        kill = bool(args.kill)
        if args.rolling:
            stack.roll_app(args.app_id)
        else:
            (stack.restart_sidecar if args.sidecar else stack.restart_app)(args.app_id, kill=kill)
    elif args.command in dapr_verbs.VERBS:
        return dapr_verbs.run(stack, args, _say)
    elif args.command == "env":
        for name, value in sorted(stack.app_environment(args.app_id).items()):
            print(f"export {name}={shlex.quote(value)}")
    elif args.command == "rotate-signing-key":
        print(json.dumps(rotate_signing_key(stack), indent=2))
    elif args.command == "new-service":
        for path in scaffold.new_service(layout.root, args.name):
            print(f"  wrote {path}")
        print(f"{args.name} added; next: {NEXT_STEPS}", flush=True)
    elif args.command == "secrets":
        devsecrets.ensure_all(layout, [a.app_id for a in stack.run_file.apps])
        print(f"dev secrets ready in {layout.secrets} and {layout.certs}")
    return 0


def _hold(stack: Stack) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    print("running in the foreground; Ctrl-C stops everything", flush=True)
    # Also return when `make down` from another shell stopped the platform.
    while not stop.wait(2.0):
        if not stack.table.running():
            return
    stack.down()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "restart" and args.rolling and (args.sidecar or args.kill):
        parser.error("restart --rolling replaces the app gracefully: not with --sidecar or --kill")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return _run(args)
    except LauncherError as exc:
        print(f"kaya787: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Session-wide fixtures. The platform fixture is used only by integration and e2e tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack
from kaya787_launcher.topology import DEFAULT_PROFILE

from tests.support.platform import ROOT, Platform


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def profile() -> str:
    """The profile the platform tests run on: the same tests, `local` or `kafka`."""
    return os.environ.get("KAYA787_PROFILE", DEFAULT_PROFILE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    running = profile()
    for item in items:
        marker = item.get_closest_marker("profiles")
        if marker is not None and running not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"needs profile {'/'.join(marker.args)}"))


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    if os.environ.get("KAYA787_E2E_TARGET") == "k8s":
        pytest.skip("drives local processes; the target is a cluster")
    stack = Stack(Layout(ROOT), profile=profile(), say=_say)
    started_here = not stack.is_up()
    if started_here:
        stack.up(timeout=120.0)
    yield Platform(stack, started_here)
    if started_here and os.environ.get("KAYA787_KEEP_PLATFORM") != "1":
        stack.down(quiet=True)

"""Headless Chromium for the browser tests: Debian's binary, flags for a box with no GPU."""

from __future__ import annotations

from tests.support.platform import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots the tests take, for a person to look at after a run.
OUTPUT = ROOT / "var" / "test-output"

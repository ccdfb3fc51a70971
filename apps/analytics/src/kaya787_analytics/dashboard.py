"""The live dashboard page and its assets: fixed files only, no data in them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from kaya787_kit.problems import Problem

_log = logging.getLogger("kaya787.analytics")

INSTALL_COMMAND = "npm ci --prefix apps/analytics/dashboard"
# Asset name in the URL -> file under the dashboard folder. A table, not a path join: no
# request can name any other file.
ASSETS = {
    "dashboard.js": "src/dashboard.js",
    "dashboard.css": "src/dashboard.css",
    "uPlot.iife.min.js": "node_modules/uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css",
}
PAGE = "src/index.html"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# The page runs only its own files (no inline code), and talks only to its own origin.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class DashboardFiles:
    root: Path

    def missing(self) -> list[str]:
        wanted = [PAGE, *ASSETS.values()]
        return [rel for rel in wanted if not (self.root / rel).is_file()]

    def report(self) -> None:
        """Log at startup what is missing: the page would answer 503 for it."""
        missing = self.missing()
        if missing:
            _log.error(
                "dashboard files missing; run `%s`",
                INSTALL_COMMAND,
                extra={"dashboard_dir": str(self.root), "missing": missing},
            )

    def response(self, relative: str) -> FileResponse:
        path = self.root / relative
        if not path.is_file():
            raise Problem(
                503,
                "dashboard_asset_missing",
                f"The dashboard asset {Path(relative).name} is not installed "
                f"(run `{INSTALL_COMMAND}`).",
                headers={"Retry-After": "60"},
            )
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


def dashboard_router(files: DashboardFiles) -> APIRouter:
    """`/dashboard` is the page, `/dashboard?asset=<name>` its files.

    Assets ride on the page's own path so that every gateway (NGINX, Kong, the Kubernetes
    ingress) needs just the one public route it already has.
    """
    router = APIRouter(tags=["dashboard"], include_in_schema=False)

    @router.get("/dashboard")
    async def page(asset: Annotated[str | None, Query(max_length=64)] = None) -> FileResponse:
        if asset is None:
            return files.response(PAGE)
        relative = ASSETS.get(asset)
        if relative is None:
            raise Problem(404, "not_found", "No such dashboard asset.")
        return files.response(relative)

    return router

"""Writing generated files the same way everywhere: only on change, private when asked."""

from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> None:
    """Write only on change, so a warm start leaves timestamps (and the process) alone.

    `mode` applies when the file is created (a file holding a secret: 0o600).
    """
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)

"""Fakes of the ops console's own parts (never of Dapr or a real cluster)."""

from __future__ import annotations

from typing import Any


class FakeKubernetesApi:
    """KubernetesApi's `get`, answered from fixed documents by path (any other path fails)."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self._answers = answers
        self.asked: list[str] = []

    async def get(self, path: str) -> dict[str, Any]:
        self.asked.append(path)
        assert path in self._answers, f"unexpected Kubernetes API call: {path}"
        return self._answers[path]

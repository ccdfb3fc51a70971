"""The profile's data tier: the broker and state-store processes `up` starts first.

`local`: Redis (state and Redis Streams); `kafka`: Kafka (KRaft) and PostgreSQL 15. Each
process has a pure builder of its own (redis_server.py, kafka_broker.py, postgres.py);
passwords come from the secret store as arguments.
"""

from __future__ import annotations

from kaya787_launcher import kafka_broker, postgres, redis_server
from kaya787_launcher.kafka_broker import KAFKA_PORT
from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import Layout
from kaya787_launcher.postgres import POSTGRES_DB, POSTGRES_PORT, POSTGRES_USER
from kaya787_launcher.topology import KAFKA_PROFILE, LOOPBACK, ControlPlanePorts

__all__ = ["KAFKA_PORT", "POSTGRES_DB", "POSTGRES_PORT", "POSTGRES_USER", "data", "describe"]

_SECRETS_NOTE = "password in var/secrets/secrets.json"


def data(
    layout: Layout, profile: str, ports: ControlPlanePorts, store: dict[str, str]
) -> list[Managed]:
    """`store`: the secret store's values (missing ones read as "": planning never makes them)."""
    if profile == KAFKA_PROFILE:
        return [
            postgres.postgres(layout, store.get("postgres-password", "")),
            kafka_broker.kafka(layout),
        ]
    return [redis_server.redis(layout, ports.redis, store.get("redis-password", ""))]


def describe(profile: str, ports: ControlPlanePorts) -> list[str]:
    if profile == KAFKA_PROFILE:
        return [
            f"  kafka         {LOOPBACK}:{KAFKA_PORT} (KRaft, one node, no auth)",
            f"  postgres      {LOOPBACK}:{POSTGRES_PORT} database {POSTGRES_DB} ({_SECRETS_NOTE})",
        ]
    return [f"  redis         {LOOPBACK}:{ports.redis} ({_SECRETS_NOTE})"]

"""Dapr component names, identical in every profile (local, kafka, k8s).

Apps refer to components only through these constants so that swapping Redis for
PostgreSQL or Redis Streams for Kafka stays a change of component YAML.
"""

from typing import Final

STATESTORE: Final = "statestore"
PUBSUB: Final = "pubsub"
SECRETSTORE: Final = "secretstore"

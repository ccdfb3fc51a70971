"""KAYA787 local launcher: Redis, the Dapr control plane and every app with its sidecar."""

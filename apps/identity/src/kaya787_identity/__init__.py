"""KAYA787 identity service."""

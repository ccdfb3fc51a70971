"""KAYA787 transactions service."""

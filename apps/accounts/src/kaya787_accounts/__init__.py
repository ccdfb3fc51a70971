"""KAYA787 accounts service."""

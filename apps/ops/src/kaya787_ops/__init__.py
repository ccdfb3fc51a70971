"""KAYA787 ops console."""

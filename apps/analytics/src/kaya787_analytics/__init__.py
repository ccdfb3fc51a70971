"""KAYA787 analytics service: real-time aggregates from domain events."""

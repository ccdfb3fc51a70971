"""Fakes of our own ports (never of Dapr), one module per app."""

"""Chaos: kill -9 each process of the platform under a steady load of transfers, restart
it, and count what the clients saw and what the ledger and analytics hold afterwards.

`make chaos` runs every fault (`python -m tests.chaos --help`); a few of them run in
`make test` (tests/integration/test_chaos.py).
"""

"""KAYA787 payment-partner simulator: the bank/card rail outside the ledger."""

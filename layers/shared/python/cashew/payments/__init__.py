"""Payments: top-ups and payments, fraud screening, gateways, idempotency, outcomes."""

"""Payouts: money out of a balance to the owner's card (API.md "Payouts (v1.1)")."""

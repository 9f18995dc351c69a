"""Accounts: users, profiles, balances and payment methods."""

"""Disputes: a payer contests a succeeded payment; an admin resolves it (won refunds the
payer through the payments module)."""

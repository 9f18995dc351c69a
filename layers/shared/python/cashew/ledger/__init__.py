"""The transaction log: an append-only, per-user hash chain of every outcome."""

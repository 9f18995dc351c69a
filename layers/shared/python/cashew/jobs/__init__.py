"""Admins ' long work (the CSV export of a range, the audit) as background jobs."""

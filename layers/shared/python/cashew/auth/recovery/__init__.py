"""Account recovery (API.md "Account recovery"): password-reset tokens and their requests."""

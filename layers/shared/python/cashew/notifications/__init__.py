"""Notifications: users are emailed every outcome of the payments bus (API.md "Notifications")."""

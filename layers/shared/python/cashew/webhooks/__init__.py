"""Signed webhooks to services: endpoints registered by admins, and the dispatcher that
routes each bus event to them and sends it, retrying, over a pinned and checked address."""

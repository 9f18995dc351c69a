"""Authentication: passwords, signing keys, tokens, sessions and the authorizer."""

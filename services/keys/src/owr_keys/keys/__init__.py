"""Stored OpenRouter keys: the public API of the vault (masked views, never the secret)."""

"""Effective prices per model and provider (and key) from activity, their drift, and the `price.drift` rule."""

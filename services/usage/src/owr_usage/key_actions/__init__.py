"""Writes to OpenRouter on a key (disable, enable, set its limit): requested here, carried out by the worker."""

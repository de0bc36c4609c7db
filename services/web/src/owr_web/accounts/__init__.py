"""`/accounts`: per management key, the account's balance and the keys OpenRouter lists for it."""

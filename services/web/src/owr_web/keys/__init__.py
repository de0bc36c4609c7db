"""`/keys` and `/keys/{id}`: every stored key with its status, limit and spend; add, rename, sync, delete."""

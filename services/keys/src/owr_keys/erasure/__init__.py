"""Erased workspaces: their tombstones, the erasure itself, and the guard every writer passes."""

"""Key snapshots (`GET /key` as the worker saw it) and the exact daily spend derived from them."""

"""What management keys see of their account: balance, every key (`/keys`) and per-model activity."""

"""One-time tokens sent by email (address verification, password reset), stored as SHA-256 only."""

"""The vault: envelope encryption of stored keys and their duplicate-detection fingerprints."""

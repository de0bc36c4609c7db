"""`/security`: two-factor sign-in (setup with the QR code, recovery codes, disable) and the sessions list."""

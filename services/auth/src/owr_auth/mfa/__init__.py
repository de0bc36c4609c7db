"""Two-factor sign-in (TOTP, RFC 6238): enrolment, recovery codes, and the second step of a login."""

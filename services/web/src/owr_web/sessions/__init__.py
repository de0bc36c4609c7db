"""Sign-in sessions: an opaque id in a cookie, the person's tokens in Redis, CSRF tokens, refresh."""

"""The public API as web calls it: through the gateway, with the signed-in person's access token."""

"""`/tokens`: the person's API tokens (prefix, scopes, expiry, last use); create one (shown once), revoke."""

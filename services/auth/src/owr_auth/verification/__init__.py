"""Email-address verification: the link sent at registration (and again on request), and its use."""

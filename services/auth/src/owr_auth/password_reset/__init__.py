"""Password reset by email: the request (202 whatever the address), the mail, and the link's use."""

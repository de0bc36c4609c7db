"""A workspace's members: listing them, changing a role, removing one, and cutting off their tokens at once."""

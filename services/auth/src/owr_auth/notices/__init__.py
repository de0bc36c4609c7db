"""Security notices: the emails that tell a person their account's security changed."""

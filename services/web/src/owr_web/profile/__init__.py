"""`/profile`: the email, changing the password, deleting the account (typed confirmation)."""

"""The weekly and monthly digests: spend against the period before, top keys and models, keys to look at."""

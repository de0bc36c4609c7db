"""Outbound email: the mails auth has the worker send, rendered (and their links minted) at sending time."""

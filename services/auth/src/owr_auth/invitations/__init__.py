"""Invitations to a workspace: made by its admins, mailed with a one-time link, accepted by the invitee."""

"""The team pages: members, invitations, the workspaces and the switcher, and accepting an invitation."""

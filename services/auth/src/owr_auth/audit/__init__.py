"""The membership audit of each workspace: who invited, joined, changed a role, left, or took over."""

"""Channels: where a workspace's alert events go (signed webhooks, Slack, Discord, email), their sealed targets and secrets."""

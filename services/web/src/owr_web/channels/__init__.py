"""`/channels` and `/channels/{id}`: where alerts go (webhook, Slack, Discord, email), the secret once, the delivery log."""

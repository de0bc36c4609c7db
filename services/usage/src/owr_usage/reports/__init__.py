"""The workspace's reads of spend: summary, daily rows, export, accounts."""

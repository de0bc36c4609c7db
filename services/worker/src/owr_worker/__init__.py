"""OpenRouter Watcher worker."""

"""OpenRouter Watcher auth."""

"""OpenRouter Watcher gateway."""

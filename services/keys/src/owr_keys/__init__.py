"""OpenRouter Watcher keys."""

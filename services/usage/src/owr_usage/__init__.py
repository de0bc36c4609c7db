"""OpenRouter Watcher usage."""

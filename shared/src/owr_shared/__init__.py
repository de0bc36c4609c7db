"""OpenRouter Watcher shared."""

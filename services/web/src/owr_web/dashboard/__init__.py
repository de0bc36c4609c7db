"""The dashboard (`/`): spend tiles, the daily chart by model, top models, keys near their limit."""

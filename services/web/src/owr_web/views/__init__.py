"""Rendering: the Jinja2 templates, their filters, the hashed assets, and errors as pages."""

"""`/docs`: Swagger UI on the merged OpenAPI document, its assets served from the installed `swagger-ui-py`.

No CDN: the page works offline and under a strict Content-Security-Policy (no inline script; the
page's own starter script is one more asset). The files are read once, on the first request for one.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from owr_gateway.openapi import OPENAPI_PATH

DOCS_PATH = "/docs"
_ASSET_FILES = {
    f"{DOCS_PATH}/swagger-ui.css": ("swagger-ui.css", b"text/css; charset=utf-8"),
    f"{DOCS_PATH}/swagger-ui-bundle.js": ("swagger-ui-bundle.js", b"text/javascript; charset=utf-8"),
}
_START_PATH = f"{DOCS_PATH}/start.js"
_START_JS = b"""const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({url: root.dataset.url, domNode: root, persistAuthorization: false});
"""
DOCS_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OpenRouter Watcher API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
</head><body><div id="swagger-ui" data-url="{OPENAPI_PATH}"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="{_START_PATH}"></script>
</body></html>
""".encode()
DOCS_PATHS = frozenset({DOCS_PATH, _START_PATH, *_ASSET_FILES})


@cache
def docs_file(path: str) -> tuple[bytes, bytes]:
    """The body and content type of the page or one of its assets (a path of DOCS_PATHS)."""
    if path == DOCS_PATH:
        return DOCS_HTML, b"text/html; charset=utf-8"
    if path == _START_PATH:
        return _START_JS, b"text/javascript; charset=utf-8"
    name, content_type = _ASSET_FILES[path]
    return resources.files("swagger_ui").joinpath("static", name).read_bytes(), content_type

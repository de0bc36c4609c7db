"""`python -m tools.web_assets` (run by `make install`): the web dashboard's static files, content-hashed.

Copies htmx and Chart.js from `services/web/node_modules` (installed by `npm ci` from the committed
`package-lock.json`, never a CDN) and every file of `services/web/assets/` into
`services/web/src/owr_web/static/dist/` as `<stem>.<first 12 hex of sha256>.<ext>`, writes `manifest.json`
(logical name → hashed file name, which owr_web's pages read), removes the hashed files no longer named, and
prints each file's gzip size and the total. A name changes exactly when its content does, so every file can
be cached for a year. Standard library only: the image's asset stage runs it with a bare interpreter.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "services" / "web"
NODE_MODULES = WEB / "node_modules"
ASSETS = WEB / "assets"
DIST = WEB / "src" / "owr_web" / "static" / "dist"
MANIFEST = "manifest.json"
HASH_HEX = 12
# Logical name → the candidates in node_modules, first existing wins (Chart.js ships a minified UMD build
# in 4.x; older 4.x releases only the unminified one).
VENDOR = {
    "htmx.js": ("htmx.org/dist/htmx.min.js",),
    "chart.js": ("chart.js/dist/chart.umd.min.js", "chart.js/dist/chart.umd.js"),
}


class MissingPackages(Exception):
    """node_modules, or a file expected in it, is not there: `make install` runs `npm ci`."""


@dataclass(frozen=True)
class Built:
    """One output file: its logical name, hashed name, size and gzip size (bytes)."""

    logical: str
    hashed: str
    size: int
    gzip_size: int


def vendor_sources(node_modules: Path) -> dict[str, Path]:
    """The npm packages' files to ship, by logical name."""
    if not node_modules.is_dir():
        raise MissingPackages(f"{node_modules} is missing")
    found = {}
    for logical, candidates in VENDOR.items():
        path = next((node_modules / c for c in candidates if (node_modules / c).is_file()), None)
        if path is None:
            raise MissingPackages(f"{node_modules} holds none of {', '.join(candidates)}")
        found[logical] = path
    return found


def own_sources(assets: Path) -> dict[str, Path]:
    """Every file of web's own assets folder (none when it does not exist yet), under its own name."""
    if not assets.is_dir():
        return {}
    return {p.name: p for p in sorted(assets.iterdir()) if p.is_file() and not p.name.startswith(".")}


def hashed_name(logical: str, content: bytes) -> str:
    """`app.css` → `app.<first 12 hex of sha256>.css`."""
    stem, dot, ext = logical.rpartition(".")
    digest = hashlib.sha256(content).hexdigest()[:HASH_HEX]
    return f"{stem}.{digest}.{ext}" if dot else f"{logical}.{digest}"


def _write_atomically(path: Path, content: bytes) -> None:
    """Readers (a running web process) see the old file or the new one, never half of one."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(content)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def build(sources: dict[str, Path], dist: Path) -> list[Built]:
    """Write each source under its hashed name and the manifest, then remove what the manifest no longer names.

    New files and the manifest come first, stale files go last: a process serving the previous manifest
    keeps finding its files until the new one is in place.
    """
    dist.mkdir(parents=True, exist_ok=True)
    built = []
    for logical, source in sources.items():
        content = source.read_bytes()
        name = hashed_name(logical, content)
        target = dist / name
        if not target.is_file() or target.read_bytes() != content:
            _write_atomically(target, content)
        built.append(Built(logical, name, len(content), len(gzip.compress(content, 9, mtime=0))))
    manifest = {b.logical: b.hashed for b in built}
    _write_atomically(dist / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    keep = {*manifest.values(), MANIFEST}
    for path in dist.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()
    return built


def report(built: list[Built]) -> str:
    """One line per file with its gzip size, then the total of the JS and CSS a page may load."""
    lines = [f"  {b.logical:<10} {b.hashed:<28} {b.size:>9,} B  {b.gzip_size:>8,} B gzip" for b in built]
    total = sum(b.gzip_size for b in built if b.logical.endswith((".js", ".css")))
    lines.append(f"  JS+CSS total, gzip: {total:,} B")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.web_assets", description=__doc__.split("\n")[0])
    parser.add_argument("--node-modules", type=Path, default=NODE_MODULES, help="where npm installed the packages")
    parser.add_argument("--assets", type=Path, default=ASSETS, help="web's own files (app.js, app.css, ...)")
    parser.add_argument("--dist", type=Path, default=DIST, help="the output folder (owr_web/static/dist)")
    args = parser.parse_args(argv)
    try:
        sources = {**vendor_sources(args.node_modules), **own_sources(args.assets)}
    except MissingPackages as exc:
        print(f"web assets: {exc}: run make install (it runs npm ci in services/web)", file=sys.stderr)
        return 1
    built = build(sources, args.dist)
    print(f"web assets -> {args.dist}\n{report(built)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

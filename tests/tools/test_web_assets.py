"""The web assets' build: content-hashed names, the manifest, stale files removed, a hint without node_modules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tools.web_assets import MANIFEST, MissingPackages, build, hashed_name, main, own_sources, vendor_sources


def packages(root: Path, *, minified_chart: bool = True) -> Path:
    """A node_modules holding what `npm ci` installs for web (the files the build reads)."""
    node_modules = root / "node_modules"
    (node_modules / "htmx.org" / "dist").mkdir(parents=True)
    (node_modules / "htmx.org" / "dist" / "htmx.min.js").write_text("var htmx={};")
    (node_modules / "chart.js" / "dist").mkdir(parents=True)
    chart = "chart.umd.min.js" if minified_chart else "chart.umd.js"
    (node_modules / "chart.js" / "dist" / chart).write_text("var Chart=function(){};")
    return node_modules


def test_a_name_carries_the_first_12_hex_of_the_contents_sha256() -> None:
    digest = hashlib.sha256(b"body{}").hexdigest()[:12]
    assert hashed_name("app.css", b"body{}") == f"app.{digest}.css"
    assert hashed_name("chart.js", b"x") != hashed_name("chart.js", b"y")


def test_the_build_writes_hashed_files_and_the_manifest(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "app.js").write_text("htmx.config.x=1;")
    (assets / "app.css").write_text("main{margin:0}")
    dist = tmp_path / "dist"
    built = build({**vendor_sources(packages(tmp_path)), **own_sources(assets)}, dist)

    manifest = json.loads((dist / MANIFEST).read_text())
    assert set(manifest) == {"htmx.js", "chart.js", "app.js", "app.css"}
    assert manifest["app.css"] == hashed_name("app.css", b"main{margin:0}")
    for logical, name in manifest.items():
        assert (dist / name).is_file(), logical
    assert (dist / manifest["htmx.js"]).read_text() == "var htmx={};"
    assert {b.logical for b in built} == set(manifest)
    assert all(b.gzip_size > 0 for b in built)


def test_a_changed_file_gets_a_new_name_and_the_old_one_is_removed(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "app.css").write_text("a{}")
    dist = tmp_path / "dist"
    node_modules = packages(tmp_path)
    build({**vendor_sources(node_modules), **own_sources(assets)}, dist)
    first = json.loads((dist / MANIFEST).read_text())
    (assets / "app.css").write_text("a{color:red}")
    (assets / "gone.js").write_text("1")
    build({**vendor_sources(node_modules), **own_sources(assets)}, dist)
    (assets / "gone.js").unlink()
    build({**vendor_sources(node_modules), **own_sources(assets)}, dist)

    second = json.loads((dist / MANIFEST).read_text())
    assert second["app.css"] != first["app.css"]
    assert second["htmx.js"] == first["htmx.js"]  # unchanged content, unchanged name
    assert "gone.js" not in second
    assert sorted(p.name for p in dist.iterdir()) == sorted([*second.values(), MANIFEST])


def test_without_an_assets_folder_only_the_packages_are_built(tmp_path: Path) -> None:
    node_modules = packages(tmp_path, minified_chart=False)
    assert own_sources(tmp_path / "assets") == {}
    assert not (tmp_path / "assets").exists()
    sources = vendor_sources(node_modules)
    assert sources["chart.js"].name == "chart.umd.js"  # the unminified UMD build when no minified one exists
    build(sources, tmp_path / "dist")
    assert set(json.loads((tmp_path / "dist" / MANIFEST).read_text())) == {"htmx.js", "chart.js"}


def test_without_node_modules_it_says_to_run_make_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MissingPackages):
        vendor_sources(tmp_path / "node_modules")
    code = main(["--node-modules", str(tmp_path / "node_modules"), "--dist", str(tmp_path / "dist")])
    assert code != 0
    assert "run make install" in capsys.readouterr().err
    assert not (tmp_path / "dist").exists()


def test_the_command_prints_each_gzip_size_and_the_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node_modules = packages(tmp_path)
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "app.css").write_text("a{}")
    code = main(["--node-modules", str(node_modules), "--assets", str(assets), "--dist", str(tmp_path / "dist")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("B gzip") == 3
    assert "JS+CSS total, gzip:" in out

"""The README keeps up with the code: every environment variable the code reads, every command,
every API endpoint, every notebook and every picture it shows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_environment_variable_is_in_the_configuration_table() -> None:
    used = set()
    for path in [*(ROOT / "gridmap").rglob("*.py"), *(ROOT / "scripts").glob("*")]:
        if path.is_file():
            used |= set(re.findall(r"GRIDMAP_[A-Z0-9_]+", path.read_text(encoding="utf-8", errors="replace")))
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(v for v in used if f"`{v}`" not in table)
    assert len(used) > 10 and not missing, missing


def test_every_command_is_in_the_reference() -> None:
    from gridmap.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"`gridmap {name}" not in README]
    assert len(commands) > 15 and not missing, missing


def test_every_endpoint_is_in_the_overview() -> None:
    from gridmap.api.app import create_app

    paths = create_app(database_url="postgresql://unused@127.0.0.1:9/none").openapi()["paths"]
    missing = []
    for path in paths:
        static = [part for part in path.strip("/").split("/") if part and "{" not in part]
        tail = "/" + static[-1] if static else "/"
        if tail.split(".")[0] not in README:
            missing.append(path)
    assert len(paths) > 40 and not missing, missing


def test_pictures_and_notebooks_exist() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert {"docs/img/planner.png", "docs/img/dashboard.png"} <= set(pictures)
    for picture in pictures:
        data = (ROOT / picture).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000, picture
    for notebook in re.findall(r"`(\d\d_\w+\.ipynb)`", README):
        assert (ROOT / "notebooks" / notebook).exists(), notebook
    assert len(re.findall(r"`(\d\d_\w+\.ipynb)`", README)) == 4

"""The README keeps up with the code: every environment variable the code reads, every command,
every API endpoint, every notebook and every picture it shows. And the documentation a user gets
is all in the repository: no file refers to a place outside it, and every relative link in the
Markdown files leads to a file (and heading) that exists."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

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


# -- nothing outside the repository ---------------------------------------------------------------
# Not the repository's content: version control, the virtual environment, tool caches and build
# output (the folders .gitignore names).
NOT_CONTENT = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".cache", "node_modules",
               "build", "dist"}
# A path that climbs out of the folder of the file it is written in: "../x", "a/../../x".
CLIMBING = re.compile(r"(?<![\w.\-/\\])((?:[\w\-][\w.\-]*/)*(?:\.\./)+[^\s'\"`()\[\]<>{},;|*]*)")
# The team's private folder beside the repository, which users never get.
TEAM_FOLDER = re.compile(r"\.\.[/\\]+shared\b")
# Strings that leave the repository on purpose: hostile input the tests send to the API.
DELIBERATE = {("tests/test_hostile_input.py", "../" * 2 + "etc/passwd")}


def repository_texts() -> dict[str, str]:
    """Every text file of the repository (README, docs, code, notebooks, data, vendored assets)
    by its path relative to the root; binary files (pictures, Parquet, GeoPackage) are left out."""
    texts = {}
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_CONTENT and not d.endswith(".egg-info"))
        for name in sorted(names):
            data = (Path(folder) / name).read_bytes()
            if b"\0" not in data[:8192]:
                texts[(Path(folder) / name).relative_to(ROOT).as_posix()] = data.decode("utf-8", errors="replace")
    return texts


def places_beside_the_repository() -> list[str]:
    """Absolute paths of this checkout and of what lies beside it (unless it sits at the top of the
    file system, where everything is beside it)."""
    places = [str(ROOT)]
    if ROOT.parent != Path(ROOT.anchor):
        try:
            places += [str(p) for p in ROOT.parent.iterdir() if p != ROOT]
        except OSError:  # a parent folder we may not list: nothing known beside us
            pass
    return places


def test_no_file_refers_outside_the_repository() -> None:
    texts = repository_texts()
    beside = re.compile(r"(?<![\w.\-/])(?:" + "|".join(re.escape(p) for p in places_beside_the_repository())
                        + r")(?![\w.\-])")
    found = []
    for rel, text in texts.items():
        found += [(rel, m.group(0)) for m in TEAM_FOLDER.finditer(text)]
        found += [(rel, m.group(0)) for m in beside.finditer(text)]
        for m in CLIMBING.finditer(text):
            target = Path(os.path.normpath(ROOT / rel / ".." / m.group(1)))
            if not target.is_relative_to(ROOT) and (rel, m.group(1)) not in DELIBERATE:
                found.append((rel, m.group(1)))
    cli = {f"gridmap/cli/{path.name}" for path in (ROOT / "gridmap" / "cli").glob("*.py")}
    assert {"README.md", "docs/domain.md", "docs/design.md", "gridmap/cli/__init__.py"} | cli <= set(texts)
    assert sum(rel.endswith(".ipynb") for rel in texts) == 4 and len(texts) > 150
    assert not found, found


# -- every relative link leads somewhere ----------------------------------------------------------
def markdown_files() -> list[Path]:
    return [ROOT / rel for rel in repository_texts() if rel.endswith(".md")]


def without_code(markdown: str) -> str:
    """Markdown with fenced code blocks and inline code removed (links there are not links)."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.M | re.S)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", markdown, flags=re.S)


def link_targets(markdown: str) -> list[str]:
    """Targets of inline links and pictures, reference definitions and HTML src/href attributes."""
    text = without_code(markdown)
    targets = re.findall(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)", text)
    targets += re.findall(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text, flags=re.M)
    targets += re.findall(r"<(?:a|img)\b[^>]*?\b(?:href|src)=[\"']([^\"']+)[\"']", text, flags=re.I)
    return targets


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: text lowercased, punctuation dropped (letters of
    any script, digits, '_' and '-' stay), spaces turned into '-', repeats numbered."""
    anchors: set[str] = set()
    for heading in re.findall(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", without_code(markdown), flags=re.M):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_every_relative_link_leads_to_a_file_that_exists() -> None:
    files = markdown_files()
    broken, checked = [], 0
    for md in files:
        rel = md.relative_to(ROOT).as_posix()
        text = md.read_text(encoding="utf-8")
        for target in link_targets(text):
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.\-]*:", target):
                continue  # a URL (https:, mailto: ...), not a file of the repository
            path, _, fragment = target.partition("#")
            path = unquote(path.split("?")[0])
            checked += 1
            if path.startswith("/"):
                broken.append((rel, target, "absolute: write it relative to the file"))
                continue
            resolved = Path(os.path.normpath(md.parent / path)) if path else md
            if not resolved.is_relative_to(ROOT):
                broken.append((rel, target, "outside the repository"))
            elif not resolved.exists():
                broken.append((rel, target, "no such file"))
            elif fragment and resolved.suffix == ".md" and \
                    unquote(fragment).lower() not in heading_anchors(resolved.read_text(encoding="utf-8")):
                broken.append((rel, target, "no such heading"))
    assert {"README.md", "docs/domain.md", "docs/design.md"} <= {md.relative_to(ROOT).as_posix() for md in files}
    assert checked > 30 and not broken, broken


def test_readme_points_to_the_domain_and_design_docs() -> None:
    targets = set(link_targets(README))
    assert {"docs/domain.md", "docs/design.md"} <= targets, sorted(targets)

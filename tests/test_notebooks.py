"""The analyst notebooks in notebooks/ run top to bottom against a database in the quickstart's
state (``gridmap up``), in a real Jupyter kernel; any error fails the test. They are kept in git
without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist_and_are_stripped() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs in git"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, demo_database, monkeypatch, tmp_path) -> None:
    assert demo_database.first_run.returncode == 0, demo_database.first_run.stderr
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", demo_database.url)  # the kernel inherits it
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    results = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in results if o.output_type == "error"]
    # the last map of each notebook really rendered (folium HTML) where the notebook draws one
    html = [o for o in results if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert html, "no rich output at all"

"""Browser pages' templates and static assets (vendored from npm; nothing from a CDN), and the
builders of the folium maps and the plan report. The routes that serve them live in
``gridmap.api.pages``: this package knows nothing of the API."""

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"

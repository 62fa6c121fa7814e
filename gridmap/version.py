"""gridmap's version: one place, read by the package, the CLI, the API and territory dumps."""

__version__ = "0.1.0"

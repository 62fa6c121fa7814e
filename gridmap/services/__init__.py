"""Service operations shared by the CLI, the API and the notebook API (one code path for all)."""

"""Persistence: the only package that speaks SQL (PostGIS via SQLAlchemy 2 + GeoAlchemy2)."""

"""Conditional reads (RFC 9110 ETag / If-None-Match) of documents that carry a version tag: a
client, or a cache in front of several server processes, that holds the current version gets
304 and nothing is read or written again."""

from __future__ import annotations

from fastapi import Request


def version_headers(tag: str, *, public: bool) -> dict[str, str]:
    """The headers of a versioned document: its ETag, revalidated at every use (``no-cache``),
    storable by shared caches only when anyone may read it (a published plan, public reads on)."""
    return {"ETag": f'"{tag}"', "Cache-Control": ("public" if public else "private") + ", no-cache",
            "Vary": "Authorization"}


def unchanged(request: Request, headers: dict[str, str]) -> bool:
    """Whether the request's If-None-Match names this version (a compressing proxy may have
    weakened the tag: W/"...")."""
    asked = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    return headers["ETag"] in asked or "*" in asked


__all__ = ["version_headers", "unchanged"]

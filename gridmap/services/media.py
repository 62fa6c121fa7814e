"""Photos sent with reports (Open311 ``media``): checked, stored once by content, served back.

A photo is accepted only if its bytes are a JPEG, PNG or WebP image (the first bytes decide, not
the name or the declared type) and at most ``MAX_MEDIA_BYTES``; it is stored under
``$GRIDMAP_HOME/media`` named by its SHA-256 (the same photo sent twice is stored once), written
to a temporary file and renamed into place, so a half-finished upload never leaves a file that a
report points to."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from gridmap.errors import Invalid, NotFound

MAX_MEDIA_BYTES = 8 * 1024**2
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")


def image_kind(head: bytes) -> str | None:
    """``jpg``, ``png`` or ``webp`` from an image's first bytes; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def store_photo(folder: Path, data: bytes) -> str:
    """Check and store one photo; its file name (``<sha256>.<ext>``)."""
    if len(data) > MAX_MEDIA_BYTES:
        raise Invalid(f"media is {len(data):,} bytes; at most {MAX_MEDIA_BYTES:,} are accepted",
                      f"照片 {len(data):,} 字节，最多接受 {MAX_MEDIA_BYTES:,} 字节")
    kind = image_kind(data[:16])
    if kind is None:
        raise Invalid("media must be a JPEG, PNG or WebP image", "照片须为 JPEG、PNG 或 WebP 图像")
    name = f"{hashlib.sha256(data).hexdigest()}.{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return name


def photo_path(folder: Path, name: str) -> Path:
    """The stored photo called ``name``; NotFound for a name that is not one or not there."""
    if not NAME.match(name) or not (folder / name).is_file():
        raise NotFound(f"no photo {name!r}", f"没有照片 {name!r}")
    return folder / name


__all__ = ["MAX_MEDIA_BYTES", "MEDIA_TYPES", "image_kind", "store_photo", "photo_path"]

"""Staff roles (网格长, 专职网格员 … 楼栋长, 单元长, 志愿者): their keys and names, defined once for
the store (its check constraint), the staff sheet (:mod:`gridmap.staffing`) and the messages.
Sign-in roles are another thing: :mod:`gridmap.sign_in_roles`.

Pure data: the store's models import it without the sheet reader (pandas) behind
:mod:`gridmap.staffing`, so a command that only reads the database starts quickly."""

from __future__ import annotations

ROLES: dict[str, tuple[str, str]] = {
    "grid_leader": ("网格长", "grid leader"),
    "full_time_worker": ("专职网格员", "full-time grid worker"),
    "part_time_worker": ("兼职网格员", "part-time grid worker"),
    "supervisor": ("网格指导员", "grid supervisor"),
    "building_leader": ("楼栋长", "building leader"),
    "stairwell_leader": ("单元长", "stairwell leader"),
    "volunteer": ("志愿者", "volunteer"),
}
"""Role key -> (Chinese name, English name)."""
FULL_TIME = "full_time_worker"

__all__ = ["ROLES", "FULL_TIME"]

"""Sign-in roles (账号角色): what an account may do over a territory and everything below it,
defined once for the store (its check constraint), the web API (its refusals) and the command line
(its choices and messages). Staff roles (网格员, 楼栋长 ...) are another thing: :mod:`gridmap.staffing`.

Pure data, imported by the command line without the web app."""

from __future__ import annotations

USER_ROLES = ("admin", "planner", "handler", "worker", "viewer")
"""admin: everything; planner: plans and layers; handler: a department's cases; worker: reports
and verifies incidents in their grids; viewer: reads."""

ROLE_ZH = {"admin": "管理员", "planner": "规划员", "handler": "处置员", "worker": "网格员", "viewer": "查看者"}
"""Each sign-in role's Chinese name, for messages."""

__all__ = ["USER_ROLES", "ROLE_ZH"]

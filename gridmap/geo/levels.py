"""What a territory is called: its level (city, district, street, community), said the way its own
name says it where the name says more. A county office's tree holds villages (村) beside urban
communities (社区) and towns (镇) and townships (乡) beside urban streets (街道); gridmap stores them
at one level each (a village is a community, a town a street: the same place in the tree and the
same rules), and calls each by what it is.

Pure: names in, names out; the one place a level is named, for the command line, the pages and
the planner."""

from __future__ import annotations

LEVEL_NAMES: dict[str, tuple[str, str]] = {
    "city": ("市", "city"), "district": ("区县", "district"), "street": ("街道", "street"),
    "community": ("社区", "community")}
"""Each level's name (Chinese, English) when the territory's own name says nothing more."""

BY_NAME: dict[str, tuple[tuple[str, tuple[str, str]], ...]] = {
    "community": (("村委会", ("村", "village")), ("村", ("村", "village")), ("社区", ("社区", "community")),
                  ("居委会", ("社区", "community"))),
    "street": (("街道", ("街道", "street")), ("镇", ("镇", "town")), ("乡", ("乡", "township"))),
    "district": (("县", ("县", "county")), ("旗", ("旗", "banner")), ("区", ("区", "district")),
                 ("市", ("县级市", "county-level city"))),
}
"""Per level, the endings of a territory's own name that say what it is (the first that matches)."""


def level_name(level: str, name: str | None = None) -> tuple[str, str]:
    """What a territory of ``level`` named ``name`` is called, in Chinese and English: ``白鹤村``
    (a community) → ("村", "village"), ``城关镇`` (a street) → ("镇", "town"), ``洪雅县`` → ("县",
    "county"); the level's own name where the name ends otherwise (or there is none); an unknown
    level as it is.

    >>> level_name("community", "白鹤村")
    ('村', 'village')
    >>> level_name("street", "东城街道")
    ('街道', 'street')
    """
    text = (name or "").strip()
    for ending, said in BY_NAME.get(level, ()):
        if text.endswith(ending):
            return said
    return LEVEL_NAMES.get(level, (level, level))


__all__ = ["LEVEL_NAMES", "BY_NAME", "level_name"]

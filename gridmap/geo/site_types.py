"""The site-type vocabulary: each type a sites layer may carry (OpenStreetMap's English words or a
Chinese district's own terms, e.g. 学校) with its English key and its Chinese term, defined once.

Units keep their site's type as the layer gave it (lower case; :mod:`gridmap.geo.units`); what a
grid, an export or a report shows is read here: :func:`site_type_terms` gives the English key and
the Chinese term of any spelling (``"学校"`` and ``"school"`` are both ``("school", "学校")``), and
:func:`site_type_label` the two together for a page (``"学校 school"``). A type the vocabulary does
not know keeps its own spelling: an English one as its key, a Chinese one as its Chinese term
(its key ``other``: keys are English).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SiteType:
    """One spelling of a site type: its English key (what a grid stores as ``site_type``), its
    Chinese term, and the English words a bilingual label shows."""

    key: str
    zh: str
    en: str


_ENGLISH = (
    SiteType("school", "学校", "school"), SiteType("university", "大学", "university"),
    SiteType("college", "学院", "college"), SiteType("hospital", "医院", "hospital"),
    SiteType("government", "政府", "townhall"), SiteType("government", "政府机关", "government"),
    SiteType("industrial", "工业园区", "industrial"), SiteType("company", "企业", "company"),
    SiteType("marketplace", "市场", "marketplace"), SiteType("retail", "商圈", "retail"),
    SiteType("commercial", "商务区", "commercial"), SiteType("office", "写字楼", "office"),
    SiteType("kindergarten", "幼儿园", "kindergarten"), SiteType("park", "公园", "park"),
    SiteType("clinic", "诊所", "clinic"), SiteType("other", "其他", "other"),
)
"""The English types (OpenStreetMap's words and the default profile's), keyed by their spelling
(``townhall`` is a ``government`` site, as 政府 is: one key a type)."""

_CHINESE = (
    SiteType("school", "学校", "school"), SiteType("university", "大学", "university"),
    SiteType("college", "学院", "college"), SiteType("hospital", "医院", "hospital"),
    SiteType("health_centre", "卫生院", "township health centre"), SiteType("clinic", "诊所", "clinic"),
    SiteType("kindergarten", "幼儿园", "kindergarten"), SiteType("government", "政府", "government office"),
    SiteType("government", "机关", "government agency"), SiteType("government", "政府机关", "government"),
    SiteType("park", "公园", "park"), SiteType("industrial", "工业园区", "industrial"),
    SiteType("company", "企业", "company"), SiteType("marketplace", "农贸市场", "farmers' market"),
    SiteType("marketplace", "市场", "marketplace"), SiteType("retail", "商场", "shopping centre"),
    SiteType("retail", "商圈", "retail"), SiteType("commercial", "商务区", "commercial"),
    SiteType("office", "写字楼", "office"), SiteType("office", "商务楼宇", "office building"),
    SiteType("care_home", "养老院", "care home"), SiteType("other", "其他", "other"),
)
"""A Chinese district's own terms (the default profile's and the demo's), keyed by the term."""

VOCABULARY: dict[str, SiteType] = {**{t.en: t for t in _ENGLISH}, **{t.zh: t for t in _CHINESE}}
"""Every known spelling (lower case) → its :class:`SiteType`."""

_CJK = re.compile(r"[\u3400-\u9fff]")


def site_type_terms(raw: object) -> tuple[str | None, str | None]:
    """(English key, Chinese term) of a site type as a layer spelled it; (None, None) for none.
    A Chinese district's own term stays its Chinese term (机关 is 机关, not 政府机关); an unknown
    type written in English is its own key (no Chinese term); one written in Chinese is ``other``
    with its own Chinese term (a key is English: 体育馆 is ``("other", "体育馆")``)."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None, None
    text = str(raw).strip()
    if not text:
        return None, None
    known = VOCABULARY.get(text.lower())
    if known is not None:
        return known.key, known.zh
    return ("other", text) if _CJK.search(text) else (text.lower(), None)


def site_type_label(raw: object) -> str:
    """A site type for a bilingual page: ``"学校 school"``, ``"农贸市场 farmers' market"``; an
    unknown type as it is spelled."""
    known = VOCABULARY.get(str(raw).strip().lower()) if raw is not None else None
    return f"{known.zh} {known.en}" if known is not None else str(raw)


__all__ = ["SiteType", "VOCABULARY", "site_type_terms", "site_type_label"]

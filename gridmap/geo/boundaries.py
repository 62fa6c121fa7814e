"""A district's boundary files checked and turned into the territory tree (district → street →
community), or refused with every problem named.

What a district office hands over is a communities layer (civil-affairs boundaries with the
12-digit statistical codes: 6 county + 3 street + 3 community), sometimes a streets layer and a
district outline. :func:`build_hierarchy` takes them (already read into EPSG:4490 and with their
columns named ``code``, ``name``, ``street_name`` …) and returns the three levels, each feature
with its parent's code, plus every finding:

* **refused** (nothing may be stored): codes that are not 12 digits, duplicate codes, codes whose
  prefix disagrees with the parent given, overlaps between communities wider than digitising
  noise, a community without its street in the streets file, streets that overlap (by the same
  measure as communities);
* **repaired** (stored repaired, and said): invalid geometry (a bow-tie, a ring crossing itself),
  each feature named with what GEOS found wrong and where (:func:`repaired_features`; the file
  readers repair on reading and hand their repairs over, so nothing is repaired unsaid); overlaps
  and gaps along shared borders narrower than ``snap_m`` (two offices digitising the same border
  a metre apart), taken by the neighbour with the longest shared border, so the communities
  become a clean coverage;
* **reported** (stored as they are, and said): gaps between communities wider than that, a street
  or district outline (from its own file, or the stored district's) that its communities fill
  only in part, a community reaching outside its street's outline or a street outside its
  district's.

The findings with a place (overlaps, gaps, where a geometry was invalid) are what the import
writes to a GeoPackage beside the files (:meth:`Hierarchy.findings_frame`) and what an API answer
carries as GeoJSON (:func:`findings_geojson`).

Streets and districts come from their own files when given, else from a district already stored
(its outline kept), else they are dissolved from the communities by code prefix, with names from
columns when present. Pure geometry: no database, no web.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import coverage
from gridmap.geo.crs import STORAGE_EPSG
from gridmap.geo.io import Repair
from gridmap.geo.shapes import LocalScale, polygonal

COMMUNITY_DIGITS, STREET_DIGITS, DISTRICT_DIGITS = 12, 9, 6
MAX_NAMED = 10
GEOJSON_DECIMALS = 7  # about 1 cm, as the territories' GeoJSON is written


@dataclass(frozen=True)
class BoundaryRules:
    """Tolerances of the checks (metres, m², shares)."""

    snap_m: float = 3.0                 # overlaps/gaps narrower than this along borders: digitising noise, repaired
    overlap_tolerance_m2: float = 100.0  # a wider overlap smaller than this is repaired too; larger: refused
    outside_share: float = 0.01         # a community with more of its area outside its street is reported
    crumb_m2: float = 100.0              # a part of a community this small beside a larger one: left out


@dataclass
class Finding:
    """One result of a check: ``severity`` is refused, repaired or reported."""

    check: str
    severity: str
    en: str
    zh: str
    codes: list[str] = field(default_factory=list)
    area_m2: float | None = None
    geometry: object | None = None  # where (overlap or gap pieces), for the GeoPackage of findings

    def as_dict(self) -> dict:
        """The finding without its place, as an API answer carries it."""
        return {"check": self.check, "severity": self.severity, "message_en": self.en, "message_zh": self.zh,
                "codes": self.codes, "area_m2": self.area_m2}


@dataclass
class Hierarchy:
    """The territory tree to store (EPSG:4490; ``code, name, parent_code, geometry`` per level)
    and what the checks found."""

    districts: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    findings: list[Finding]

    @property
    def refused(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "refused"]

    @property
    def placed(self) -> list[Finding]:
        """The findings that have a place (an overlap, a gap, where a geometry was invalid)."""
        return [f for f in self.findings if f.geometry is not None and not shapely.is_empty(f.geometry)]

    def findings_frame(self) -> gpd.GeoDataFrame:
        """The findings with a place, as a layer (one row per piece) to open beside the map."""
        rows = [{"check": f.check, "severity": f.severity, "codes": ",".join(f.codes), "area_m2": f.area_m2,
                 "message_zh": f.zh, "message_en": f.en, "geometry": f.geometry} for f in self.placed]
        columns = ["check", "severity", "codes", "area_m2", "message_zh", "message_en", "geometry"]
        return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry", crs=STORAGE_EPSG)


def _named(codes) -> str:
    codes = [str(c) for c in codes]
    more = len(codes) - MAX_NAMED
    return ", ".join(codes[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _named_zh(codes) -> str:
    codes = [str(c) for c in codes]
    more = len(codes) - MAX_NAMED
    return "、".join(codes[:MAX_NAMED]) + (f" 等 {len(codes)} 个" if more > 0 else "")


def _code(value) -> str:
    """One code as text (see :func:`code_text`)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value).strip()


def code_text(values: pd.Series) -> pd.Series:
    """Codes as text: a numeric column (a shapefile's N field) loses nothing but its float
    formatting (``511802001001.0`` → ``511802001001``); text is stripped. Leading zeros survive
    only in text columns, which is why codes must be text in the files."""
    return values.map(_code).astype(str)


def _area_said(m2: float) -> tuple[str, str]:
    """An area for a message, in m² below a square kilometre, else in km² (English, Chinese)."""
    if m2 >= 1e6:
        return f"{m2 / 1e6:,.2f} km²", f"{m2 / 1e6:,.2f} 平方公里"
    return f"{m2:,.0f} m²", f"{m2:,.0f} 平方米"


# -- invalid geometry -----------------------------------------------------------------------------------
def repaired_features(frame: pd.DataFrame, repairs: Iterable[Repair], what_en: str, what_zh: str
                      ) -> list[Finding]:
    """One ``repaired`` finding per feature of ``frame`` whose geometry was invalid and repaired:
    named by its ``code`` (and ``name`` when it has one), with what was wrong in both languages
    (GEOS's reason) and, when GEOS says where, that point (EPSG:4490) as its place.

    ``repairs`` are the rows of ``frame`` (0-based) and their reasons, as the readers return them
    (``ReadResult.repairs``) or as :func:`build_hierarchy` finds them in frames given directly."""
    findings = []
    for repair in repairs:
        row = frame.iloc[repair.position]
        code = _code(row["code"]) if "code" in frame else ""
        name = str(row["name"]).strip() if "name" in frame and pd.notna(row["name"]) else ""
        label_en = f"{what_en} {code or f'#{repair.position + 1}'}" + (f" ({name})" if name else "")
        label_zh = f"{what_zh} {code or f'第 {repair.position + 1} 个'}" + (f"（{name}）" if name else "")
        kind, kind_zh, place = repair.said()
        findings.append(Finding("invalid_geometry", "repaired",
                                f"{label_en}: invalid geometry ({kind}), repaired",
                                f"{label_zh}的几何无效（{kind_zh}），已修复",
                                [code] if code else [], None, place))
    return findings


def named_apart(comm: pd.DataFrame) -> list[Finding]:
    """Communities whose county code (the first 6 digits) disagrees with their own 区县名称: a
    district name borne by communities of two county codes, where one code holds under a quarter
    as many of them as the usual one (so a district of fewer than five communities cannot tell a
    slip from two districts, and is let through). A one-digit slip (510105… for 510150…) otherwise creates a second district silently
    (510105 is 青羊区, a real one), its street split between two codes. Refused, naming the
    communities, the codes and the name."""
    if "district_name" not in comm:
        return []
    names = comm["district_name"].astype("string").str.strip()
    county = comm["code"].str[:DISTRICT_DIGITS]
    findings = []
    for name, codes in county[names.notna() & (names != "")].groupby(names).agg(list).items():
        counts = pd.Series(codes).value_counts()
        if len(counts) < 2:
            continue
        usual = str(counts.index[0])
        for odd in counts.index[1:]:
            if counts[odd] * 4 > counts[usual]:  # two real districts of one name: not a slip
                continue
            which = comm["code"][(county == odd) & (names == name)].tolist()
            findings.append(Finding(
                "district_code_slip", "refused",
                f"{_named(which)}: county code {odd}, but 区县名称 {name} is that of {usual} "
                f"({counts[usual]} communities): a mistyped code? Correct it (or the name)",
                f"{_named_zh(which)}：区县代码为 {odd}，但区县名称“{name}”属于 {usual}（{counts[usual]} 个社区）："
                f"是否代码录入有误？请更正代码（或名称）", which))
    return findings


def drop_crumbs(comm: gpd.GeoDataFrame, rules: BoundaryRules) -> tuple[np.ndarray, list[Finding]]:
    """Each community's geometry less its crumbs: parts under ``rules.crumb_m2`` beside a larger
    part. A ring that crosses itself (a bow-tie) is repaired into its lobes, and one lobe is often
    a few square metres across the line the clerk meant (a new user's 芳草社区 came out as
    475,192 m² and 16 m², the crumb outside the district): kept, it made the community two pieces,
    its grids flagged as islands and its micro-grids "in two pieces though the community is
    one". A real exclave is far larger. Each community that lost a crumb is a ``repaired``
    finding, with the areas left out."""
    geoms = polygonal(shapely.make_valid(np.asarray(comm.geometry.values, dtype=object)))  # (readers repaired theirs)
    findings: list[Finding] = []
    several = np.flatnonzero(shapely.get_num_geometries(geoms) > 1)
    if not len(several):
        return geoms, findings
    scale = LocalScale.at(float(np.mean(shapely.get_y(shapely.centroid(geoms[several])))))
    for i in several:
        parts = np.asarray(shapely.get_parts(geoms[i]), dtype=object)
        area = scale.area(parts)
        crumb = (area < rules.crumb_m2) & (area < area.max())
        if not crumb.any():
            continue
        geoms[i] = shapely.multipolygons(parts[~crumb]) if (~crumb).sum() > 1 else parts[~crumb][0]
        code = _code(comm["code"].iloc[i])
        name = str(comm["name"].iloc[i]).strip() if "name" in comm and pd.notna(comm["name"].iloc[i]) else ""
        sizes = ", ".join(f"{a:,.1f} m²" for a in sorted(area[crumb]))
        findings.append(Finding("crumb_removed", "repaired",
                                f"community {code}{f' ({name})' if name else ''}: {int(crumb.sum())} part(s) of "
                                f"{sizes} apart from the rest left out (a crumb of a repaired or mis-digitised "
                                f"outline, under {rules.crumb_m2:g} m²)",
                                f"社区 {code}{f'（{name}）' if name else ''}：与主体分离的 {int(crumb.sum())} 个碎块"
                                f"（{sizes}）已去除（修复或数字化误差产生的碎块，小于 {rules.crumb_m2:g} 平方米）",
                                [code], float(area[crumb].sum()), shapely.centroid(shapely.union_all(parts[crumb]))))
    return geoms, findings


def _invalid(frame: gpd.GeoDataFrame, what_en: str, what_zh: str) -> list[Finding]:
    """The findings for the invalid geometries of a frame given as it is (the readers have
    repaired and reported theirs already): what :func:`build_hierarchy` then repairs."""
    geoms = np.asarray(frame.geometry.values, dtype=object)
    invalid = np.flatnonzero(~shapely.is_valid(geoms) & ~shapely.is_missing(geoms))
    reasons = shapely.is_valid_reason(geoms[invalid]) if len(invalid) else []
    return repaired_features(frame, [Repair(int(i), str(r)) for i, r in zip(invalid, reasons)], what_en, what_zh)


def findings_geojson(findings: Iterable[Finding]) -> dict:
    """The findings that have a place as an RFC 7946 FeatureCollection: longitude/latitude as
    stored (EPSG:4490, which differs from the WGS 84 that GeoJSON means by centimetres), 7
    decimals, polygons counter-clockwise, no ``crs`` member; the properties are the columns of
    the GeoPackage of findings (``codes`` as a list)."""
    features = []
    for f in findings:
        if f.geometry is None or shapely.is_empty(f.geometry):
            continue
        geometry = shapely.orient_polygons(shapely.transform(f.geometry, lambda c: np.round(c, GEOJSON_DECIMALS)))
        features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(geometry)),
                         "properties": {"check": f.check, "severity": f.severity, "codes": list(f.codes),
                                        "area_m2": None if f.area_m2 is None else round(float(f.area_m2), 1),
                                        "message_en": f.en, "message_zh": f.zh}})
    return {"type": "FeatureCollection", "features": features}


# -- codes ----------------------------------------------------------------------------------------------
def check_codes(codes: pd.Series, digits: int, what_en: str, what_zh: str, parent: str | None = None,
                frame: gpd.GeoDataFrame | None = None) -> list[Finding]:
    """Codes that are not ``digits`` digits, duplicates, and codes outside ``parent``'s prefix.
    ``frame`` (the features the codes are of): a duplicate is named with the features' names and
    placed where they are, so the clerk sees which two 社区 share a code."""
    findings = []
    bad = codes[~codes.str.fullmatch(rf"\d{{{digits}}}")]
    if len(bad):
        shown = sorted({c or "(empty)" for c in bad})
        findings.append(Finding("bad_code", "refused",
                                f"{len(bad)} {what_en} code{'s are' if len(bad) > 1 else ' is'} not {digits} digits: "
                                f"{_named(shown)} (a code read as a number loses its leading zeros: keep the column as "
                                "text, or name it with --fields code=COLUMN)",
                                f"{len(bad)} 个{what_zh}代码不是 {digits} 位数字：{_named_zh(shown)}（代码若被当作数字读取会丢失"
                                "开头的 0：请把该列保存为文本，或用 --fields code=列名 指定代码列）", shown))
    duplicated = sorted(set(codes[codes.duplicated() & (codes != "")]))
    if duplicated:
        shown, place = duplicated, None
        if frame is not None:
            held = codes.isin(duplicated).to_numpy()
            if "name" in frame:
                names = frame["name"].astype("string").str.strip().fillna("").to_numpy()
                shown = [f"{code} ({'/'.join(n or '?' for n in names[codes.to_numpy() == code])})" for code in duplicated]
            place = shapely.union_all(np.asarray(frame.geometry.values, dtype=object)[held])
        findings.append(Finding("duplicate_code", "refused",
                                f"{what_en} codes used more than once: {_named(shown)}; give each {what_en} its own "
                                f"{digits}-digit code (the statistical code of the civil-affairs office) in the file and "
                                "import it again (--dry-run checks without storing)",
                                f"{what_zh}代码重复：{_named_zh(shown)}；请在文件中为每个{what_zh}填写各自的 {digits} 位代码"
                                "（民政部门的统计用区划代码）后重新导入（可先加 --dry-run 检查，不保存）",
                                duplicated, None, place))
    if parent:
        prefix = significant_prefix(parent)
        outside = sorted(set(codes[codes.str.fullmatch(rf"\d{{{digits}}}") & ~codes.str.startswith(prefix)]))
        if outside:
            findings.append(Finding("prefix", "refused",
                                    f"{what_en} codes do not start with {prefix} of the parent {parent}: {_named(outside)}",
                                    f"{what_zh}代码与上级 {parent} 的前缀 {prefix} 不符：{_named_zh(outside)}", outside))
    return findings


def significant_prefix(code: str) -> str:
    """The part of a code that its children repeat: a city ``511800`` → ``5118``, a district
    ``511802`` → ``511802``, a street ``511802001`` → itself (GB/T 2260 pads with zero pairs)."""
    code = str(code)
    if len(code) == DISTRICT_DIGITS:
        stripped = code
        while len(stripped) > 2 and stripped.endswith("00"):
            stripped = stripped[:-2]
        return stripped
    return code


# -- geometry -------------------------------------------------------------------------------------------
def clean_communities(frame: gpd.GeoDataFrame, rules: BoundaryRules) -> tuple[np.ndarray, list[Finding]]:
    """The communities as a clean coverage, or refusals for overlaps wider than noise.

    Overlaps and gaps are the faces of the noded arrangement of all community borders held by
    several communities or by none (bounded by communities). Those narrower than ``snap_m`` or
    smaller than ``overlap_tolerance_m2`` are repaired; a larger overlap is refused; a larger gap
    is reported and left (a district's communities need not cover it: there may be land under
    no community). Invalid geometries are made valid first (:func:`build_hierarchy` says which)."""
    codes = frame["code"].to_numpy()
    geoms = polygonal(shapely.make_valid(np.asarray(frame.geometry.values, dtype=object)))
    scale = LocalScale.at(float(np.mean(shapely.get_y(shapely.centroid(geoms)))))
    arrangement = _Arrangement.of(geoms, scale, rules)
    faces, holders, area, noise = arrangement.faces, arrangement.holders, arrangement.area, arrangement.noise
    findings = _overlaps(arrangement, codes, "communities", "社区")
    if findings:
        return geoms, findings
    overlap = holders > 1
    gap = holders == 0
    wide_gaps = np.flatnonzero(gap & ~noise)
    slits = _open_slits(geoms, scale, rules)
    repaired_overlaps = int((overlap & noise).sum())
    repaired_gaps = int((gap & noise).sum()) + len(slits)
    outline = shapely.union_all(np.concatenate([geoms, faces[gap & noise], slits]))
    cleaned = coverage.clean(geoms, np.zeros(len(geoms), dtype=object), project=lambda c: c * [scale.mx, scale.my],
                             territory=np.array([outline], dtype=object), territory_groups=np.array([0], dtype=object))
    tree = shapely.STRtree(geoms)
    if repaired_overlaps or repaired_gaps:
        pieces = np.concatenate([faces[(overlap | gap) & noise], slits])
        repaired_m2 = float(scale.area(pieces).sum())
        around = sorted({str(c) for piece in pieces for c in codes[_bordering(piece, geoms, tree)]})
        findings.append(Finding(
            "snapped", "repaired",
            f"{repaired_overlaps} overlap{'' if repaired_overlaps == 1 else 's'} and {repaired_gaps} "
            f"gap{'' if repaired_gaps == 1 else 's'} along shared borders (narrower than "
            f"{rules.snap_m:g} m or smaller than {rules.overlap_tolerance_m2:g} m², {repaired_m2:,.0f} m² in all; "
            f"communities {_named(around)}) given to the neighbour with the longest border",
            f"共享边界上的 {repaired_overlaps} 处重叠和 {repaired_gaps} 处缝隙（窄于 {rules.snap_m:g} 米或小于 "
            f"{rules.overlap_tolerance_m2:g} 平方米，合计 {repaired_m2:,.0f} 平方米；涉及社区 {_named_zh(around)}）"
            "已并入边界最长的相邻社区",
            around, repaired_m2, shapely.union_all(pieces)))
    for face in wide_gaps:
        around = sorted(set(codes[_bordering(faces[face], geoms, tree)]))
        findings.append(Finding(
            "gap", "reported",
            f"a gap of {area[face]:,.0f} m² between communities {', '.join(around) or '(none)'} belongs to no community",
            f"社区 {'、'.join(around) or '（无）'} 之间有 {area[face]:,.0f} 平方米的缝隙不属于任何社区",
            around, float(area[face]), faces[face]))
    return cleaned, findings


SLIT_MIN_BORDER_M = 10.0
"""A strip open to the territory's edge is a gap between two communities (:func:`_open_slits`)
where it runs along each of them for at least this long: the closing also fills the tip of a
V-shaped inlet between two communities (a stream's mouth, land of no community) where the inlet is
narrower than ``snap_m``, a few metres along each side."""


def _open_slits(geoms: np.ndarray, scale: LocalScale, rules: BoundaryRules) -> np.ndarray:
    """Strips narrower than ``snap_m`` between two communities that open onto the edge of the
    territory (two village boundaries drawn 1.5 m apart, out to the county's edge): not faces of
    the arrangement (nothing encloses them), so found by a morphological closing of the
    communities' outline (a buffer out by half of ``snap_m`` and back, in metres), less the outline
    with its holes filled (the enclosed gaps are faces already). Each piece kept runs along two or
    more communities for at least :data:`SLIT_MIN_BORDER_M`. In degrees, their edges along the
    communities those of the outline itself."""
    if len(geoms) < 2 or rules.snap_m <= 0:
        return np.empty(0, dtype=object)
    factor = np.array([scale.mx, scale.my])
    filled = shapely.union_all([shapely.Polygon(part.exterior) for part in
                                shapely.get_parts(shapely.union_all(geoms)) if not part.is_empty])
    half = rules.snap_m / 2
    # round joins: the textbook closing (mitred ones left slivers of a few centimetres along a V's sides)
    closed_m = shapely.buffer(shapely.buffer(shapely.transform(filled, lambda c: c * factor), half), -half)
    closed = shapely.transform(closed_m, lambda c: c / factor)
    pieces = polygonal(shapely.get_parts(shapely.difference(closed, filled)))
    pieces = pieces[~shapely.is_empty(pieces)]
    if not len(pieces):
        return pieces
    pieces = pieces[scale.area(pieces) >= 1.0]
    metric = scale.metric(geoms)
    kept = []
    for piece in pieces:
        rim = shapely.buffer(shapely.boundary(scale.metric(np.array([piece], dtype=object))[0]), 0.05)
        along = shapely.length(shapely.intersection(shapely.boundary(metric), rim))
        if int((along >= SLIT_MIN_BORDER_M).sum()) >= 2:
            kept.append(piece)
    return np.array(kept, dtype=object)


def _bordering(face, geoms: np.ndarray, tree: shapely.STRtree, tolerance_deg: float = 1e-9) -> np.ndarray:
    """Which of ``geoms`` share a stretch of border with ``face`` (a face of their noded
    arrangement, whose vertices the noding snapped: "touches" misses them; a shared corner is not
    a border)."""
    near = tree.query(face, predicate="dwithin", distance=tolerance_deg)
    shared = shapely.length(shapely.intersection(shapely.boundary(face),
                                                 shapely.buffer(shapely.boundary(geoms[near]), tolerance_deg)))
    return near[shared > 1000 * tolerance_deg]


@dataclass
class _Arrangement:
    """The faces of the noded arrangement of some polygons' borders: which polygons hold each face
    (pairs ``face_i``, ``geom_i``), how many (``holders``: 0 is a gap, 2 or more an overlap), and
    each face's area (m²), width (m) and whether it is digitising noise (narrower than ``snap_m``
    or smaller than ``overlap_tolerance_m2``)."""

    faces: np.ndarray
    face_i: np.ndarray
    geom_i: np.ndarray
    holders: np.ndarray
    area: np.ndarray
    width: np.ndarray
    noise: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray, scale: LocalScale, rules: BoundaryRules) -> "_Arrangement":
        faces = coverage.faces_of(geoms)
        face_i, geom_i = shapely.STRtree(geoms).query(shapely.point_on_surface(faces), predicate="within")
        area, width = scale.area(faces), scale.width(faces)
        return cls(faces, face_i, geom_i, np.bincount(face_i, minlength=len(faces)), area, width,
                   (width < rules.snap_m) | (area < rules.overlap_tolerance_m2))


def _overlaps(arrangement: _Arrangement, codes: np.ndarray, what_en: str, what_zh: str) -> list[Finding]:
    """A refusal for each face held by several polygons that is wider than digitising noise,
    naming the polygons (by ``codes``) and the overlap's area and width."""
    a = arrangement
    wide = np.flatnonzero((a.holders > 1) & ~a.noise)
    if not len(wide):
        return []
    pairs = pd.DataFrame({"face": a.face_i, "code": np.asarray(codes, dtype=object)[a.geom_i]})
    pairs = pairs[pairs["face"].isin(wide)].groupby("face")["code"].apply(lambda c: sorted(c))
    return [Finding("overlap", "refused",
                    f"{what_en} {' and '.join(held)} overlap by {a.area[face]:,.0f} m² (about {a.width[face]:.1f} m wide)",
                    f"{what_zh} {'与'.join(held)} 重叠 {a.area[face]:,.0f} 平方米（宽约 {a.width[face]:.1f} 米）",
                    list(held), float(a.area[face]), a.faces[face]) for face, held in pairs.items()]


def _dissolve(geoms: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``geoms`` per key (:func:`gridmap.geo.coverage.dissolve`), polygonal."""
    out_keys, out_geoms = coverage.dissolve(geoms, np.asarray(keys, dtype=object))
    return out_keys.astype(object), polygonal(out_geoms)


def _outside(children: np.ndarray, child_codes: np.ndarray, parents: dict[str, object], parent_of: np.ndarray,
             scale: LocalScale, share: float, what: tuple[str, str, str, str]) -> list[Finding]:
    """Children with more than ``share`` of their area outside their parent's outline."""
    findings = []
    parent_geoms = np.array([parents.get(p, shapely.Polygon()) for p in parent_of], dtype=object)
    outside = shapely.difference(children, parent_geoms)
    area_out, area = scale.area(outside), scale.area(children)
    child_en, parent_en, child_zh, parent_zh = what
    for i in np.flatnonzero(area_out > share * np.maximum(area, 1e-9)):
        findings.append(Finding(
            "outside_parent", "reported",
            f"{child_en} {child_codes[i]} has {area_out[i]:,.0f} m² ({area_out[i] / area[i]:.0%}) outside its "
            f"{parent_en} {parent_of[i]}",
            f"{child_zh} {child_codes[i]} 有 {area_out[i]:,.0f} 平方米（{area_out[i] / area[i]:.0%}）在所属{parent_zh} "
            f"{parent_of[i]} 之外", [str(child_codes[i]), str(parent_of[i])], float(area_out[i]), outside[i]))
    return findings


# -- the tree -------------------------------------------------------------------------------------------
def build_hierarchy(communities: gpd.GeoDataFrame, *, streets: gpd.GeoDataFrame | None = None,
                    districts: gpd.GeoDataFrame | None = None, parent: str | None = None,
                    rules: BoundaryRules | None = None) -> Hierarchy:
    """Check the boundary files and build the tree; see the module docstring.

    ``communities`` has ``code`` and ``geometry`` (and may have ``name``, ``street_name``,
    ``district_name``); ``streets`` and ``districts`` have ``code``, ``geometry`` and may have
    ``name`` (a district already stored is passed as ``districts`` with ``source`` "stored").
    ``parent`` is the code of the territory above the districts (a city) or of the district."""
    rules = rules or BoundaryRules()
    comm = communities.to_crs(STORAGE_EPSG).reset_index(drop=True).copy()
    comm["code"] = code_text(comm["code"])
    findings = _invalid(comm, "community", "社区")
    findings += check_codes(comm["code"], COMMUNITY_DIGITS, "community", "社区", parent, frame=comm)
    findings += named_apart(comm)
    # a refused code still lets the outlines be checked: every finding of the files in one answer,
    # not the overlaps only once the codes are fixed (the streets and districts hang on the codes)
    if any(f.severity == "refused" for f in findings) and shapely.is_missing(comm.geometry.values).any():
        return _empty(findings)
    comm["geometry"], crumb_findings = drop_crumbs(comm, rules)
    findings += crumb_findings
    geoms, geometry_findings = clean_communities(comm, rules)
    findings += geometry_findings
    if any(f.severity == "refused" for f in findings):
        return _empty(findings)
    comm["geometry"] = geoms
    comm["name"] = _names(comm, "name", "社区 ")
    comm["parent_code"] = comm["code"].str[:STREET_DIGITS]
    scale = LocalScale.at(float(np.mean(shapely.get_y(shapely.centroid(geoms)))))
    street_frame, street_findings = _streets(comm, streets, scale, rules)
    findings += street_findings
    if any(f.severity == "refused" for f in findings):
        return _empty(findings)
    district_frame, district_findings = _districts(comm, street_frame, districts, parent, scale, rules)
    findings += district_findings
    columns = ["code", "name", "parent_code", "geometry"]
    return Hierarchy(district_frame, street_frame[columns], gpd.GeoDataFrame(comm[columns], crs=STORAGE_EPSG),
                     findings)


def _names(frame: pd.DataFrame, column: str, fallback: str) -> pd.Series:
    """Names from ``column`` where present and not blank, else ``fallback`` + code."""
    if column not in frame:
        return fallback + frame["code"]
    names = frame[column].astype("string").str.strip()
    return names.where(names.notna() & (names != ""), fallback + frame["code"]).astype(str)


def _streets(comm: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None, scale: LocalScale,
             rules: BoundaryRules) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """The streets: from their file (checked: codes, every community's street present, no two
    streets overlapping wider than noise, communities inside their street, streets their
    communities fill) or dissolved from the communities by code prefix."""
    keys, dissolved = _dissolve(np.asarray(comm.geometry.values, dtype=object), comm["parent_code"].to_numpy())
    if streets is None:
        names = (comm.groupby("parent_code")["street_name"].first() if "street_name" in comm else pd.Series(dtype=str))
        frame = gpd.GeoDataFrame({"code": keys, "geometry": dissolved}, geometry="geometry", crs=STORAGE_EPSG)
        frame["name"] = _names(frame.assign(street_name=frame["code"].map(names)), "street_name", "街道 ")
        frame["parent_code"] = frame["code"].str[:DISTRICT_DIGITS]
        return frame, []
    frame = streets.to_crs(STORAGE_EPSG).reset_index(drop=True).copy()
    frame["code"] = code_text(frame["code"])
    findings = _invalid(frame, "street", "街道") + check_codes(frame["code"], STREET_DIGITS, "street", "街道",
                                                                     frame=frame)
    missing = sorted(set(keys) - set(frame["code"]))
    if missing:
        orphans = sorted(comm.loc[comm["parent_code"].isin(missing), "code"])
        findings.append(Finding("no_street", "refused",
                                f"the streets file has no street {_named(missing)} for communities {_named(orphans)}",
                                f"街道文件中没有街道 {_named_zh(missing)}（社区 {_named_zh(orphans)} 的上级）", orphans))
    if any(f.severity == "refused" for f in findings):
        return frame, findings
    frame["geometry"] = polygonal(shapely.make_valid(np.asarray(frame.geometry.values, dtype=object)))
    overlaps = _overlaps(_Arrangement.of(np.asarray(frame.geometry.values, dtype=object), scale, rules),
                         frame["code"].to_numpy(), "streets", "街道")
    if overlaps:
        return frame, findings + overlaps
    frame["name"] = _names(frame, "name", "街道 ")
    frame["parent_code"] = frame["code"].str[:DISTRICT_DIGITS]
    outlines = dict(zip(frame["code"], frame.geometry.values))
    findings += _outside(np.asarray(comm.geometry.values, dtype=object), comm["code"].to_numpy(), outlines,
                         comm["parent_code"].to_numpy(), scale, rules.outside_share, ("community", "street", "社区", "街道"))
    filled = dict(zip(keys, dissolved))
    findings += _uncovered(frame, np.array([filled.get(c, shapely.Polygon()) for c in frame["code"]], dtype=object),
                           scale, rules.outside_share, ("street", "街道"))
    return frame, findings


def _districts(comm: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None,
               parent: str | None, scale: LocalScale, rules: BoundaryRules) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """The districts: from their file or the stored outline (kept), else dissolved from the
    streets; each with its parent (the city) code; streets outside their district reported."""
    keys, dissolved = _dissolve(np.asarray(streets.geometry.values, dtype=object), streets["parent_code"].to_numpy())
    frame = gpd.GeoDataFrame({"code": keys, "geometry": dissolved}, geometry="geometry", crs=STORAGE_EPSG)
    names = comm.groupby(comm["code"].str[:DISTRICT_DIGITS])["district_name"].first() if "district_name" in comm else None
    frame["name"] = _names(frame.assign(district_name=frame["code"].map(names)) if names is not None else frame,
                           "district_name", "区县 ")
    findings: list[Finding] = []
    if districts is not None and len(districts):
        given = districts.to_crs(STORAGE_EPSG).reset_index(drop=True).copy()
        given["code"] = code_text(given["code"])
        findings += _invalid(given, "district", "区县")
        by_code = given.set_index("code")
        known = frame["code"].isin(by_code.index)
        frame.loc[known, "geometry"] = polygonal(shapely.make_valid(
            np.asarray(by_code.loc[frame.loc[known, "code"], "geometry"].values, dtype=object)))
        if "name" in by_code:
            names_given = by_code.loc[frame.loc[known, "code"], "name"].astype("string")
            frame.loc[known, "name"] = np.where(names_given.notna() & (names_given != ""), names_given,
                                                frame.loc[known, "name"])
        outlines = dict(zip(frame["code"], frame.geometry.values))
        findings += _outside(np.asarray(streets.geometry.values, dtype=object), streets["code"].to_numpy(), outlines,
                             streets["parent_code"].to_numpy(), scale, rules.outside_share,
                             ("street", "district", "街道", "区县"))
        findings += _uncovered(frame.loc[known], dissolved[known.to_numpy()], scale, rules.outside_share,
                               ("district", "区县"))
    frame["parent_code"] = _city_of(frame["code"], parent)
    return frame[["code", "name", "parent_code", "geometry"]], findings


def _uncovered(parents: gpd.GeoDataFrame, covered: np.ndarray, scale: LocalScale, share: float,
               what: tuple[str, str]) -> list[Finding]:
    """Streets or districts (``what``: their name in English and Chinese) with an outline of their
    own that their communities (``covered``: their union per parent) fill only in part: more than
    ``share`` of the outline under no community."""
    findings = []
    outline = np.asarray(parents.geometry.values, dtype=object)
    left = polygonal(shapely.difference(outline, covered))
    area_left, area = scale.area(left), scale.area(outline)
    what_en, what_zh = what
    for i in np.flatnonzero(area_left > share * np.maximum(area, 1e-9)):
        code = parents["code"].iloc[i]
        said_en, said_zh = _area_said(float(area_left[i]))
        findings.append(Finding(
            "gap", "reported",
            f"the communities cover {1 - area_left[i] / area[i]:.0%} of {what_en} {code}: {said_en} lie under no community",
            f"社区只覆盖{what_zh} {code} 的 {1 - area_left[i] / area[i]:.0%}：{said_zh}不属于任何社区",
            [str(code)], float(area_left[i]), left[i]))
    return findings


def _city_of(district_codes: pd.Series, parent: str | None) -> pd.Series:
    """The city above each district: ``parent`` when it is one (not the district itself), else the
    district code's city (``511802`` → ``511800``)."""
    if parent and len(parent) == DISTRICT_DIGITS and parent not in set(district_codes):
        return pd.Series(parent, index=district_codes.index)
    return district_codes.str[:4] + "00"


def _empty(findings: list[Finding]) -> Hierarchy:
    empty = gpd.GeoDataFrame({"code": [], "name": [], "parent_code": []}, geometry=[], crs=STORAGE_EPSG)
    return Hierarchy(empty, empty.copy(), empty.copy(), findings)


__all__ = ["BoundaryRules", "Finding", "Hierarchy", "build_hierarchy", "check_codes", "clean_communities",
           "code_text", "findings_geojson", "repaired_features", "significant_prefix"]

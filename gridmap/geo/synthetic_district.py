"""A synthetic Chinese district, as a district office would hand it over: 雨城区 (Ya'an, 511802).

**Everything this module makes is synthetic (合成数据) except the district boundary**, which is
the real 511802 polygon of ``data/boundaries/yaan/districts.parquet`` (Amap, converted to
CGCS2000). Streets, communities, roads, rivers, compounds, buildings and facilities are invented:
their names sound real, their shapes follow Chinese patterns, none of them is a survey of Ya'an.
Every feature carries ``来源 = "合成数据(synthetic)"``.

What :func:`generate` builds (deterministic for ``Config.seed``; shapely 2 / numpy array
operations, Python loops only over blocks, communities and hamlets, never over buildings):

1. **The urban core** (城区) around ``Config.core_center`` (103.00°E, 29.98°N, inside the
   district, on the 青衣江): a smooth blob ringed by an expressway (环城快速路). The 青衣江
   crosses it west→east, its tributary 周公河 joins from the south, and three trunk roads (two
   bridges north–south, one east–west) cut it into *zones*, each with its own slightly irregular,
   rotated grid of main roads (主干路/次干路) and minor roads (支路).
2. **Communities** (社区) are the faces of the main network (ring, rivers, trunk and main roads):
   their borders follow main roads, as real ones do; faces under 0.2 km² join a neighbour.
   **Villages** (村) are Voronoi cells (Lloyd-relaxed) over the rest of the district, a village
   cut in two by the district outline given to its neighbour. All borders are noded in one
   arrangement in lon/lat together with the real boundary, so communities tile their street and
   streets tile the district exactly (``shapely.coverage_is_valid``; the union is the district).
3. **Streets** (街道/乡镇): four urban streets (东城, 西城, 河北, 青江) by river side and trunk
   roads, two peri-urban streets (大兴, 多营) with urban communities and the villages around
   their seats, and four towns (草坝镇, 合江镇, 碧峰峡镇, 上里镇) taking the mountains. Codes follow
   GB/T 10114: 街道 ``001``…, 镇 ``101``…; 社区 ``001``…, 村 ``201``… (12 digits, text).
4. **Blocks** are the faces of every core road; each block holds a facility, one to three gated
   compounds (小区, set back from the road centre lines, with internal 小区路 in the gaps
   between building rows), an open block of buildings without a compound, or nothing (shops,
   vacant land). Building types follow Chinese patterns: high-rise towers (18–33 floors, 2–4
   units of 2 homes per floor: 70–260 households), walk-up slabs (6–7 floors, 2–3 stairwells, 2
   homes per floor and stairwell: 24–42), low-rise and villas (1–3), rural houses (1–2) in
   hamlets. Each urban community is filled to a target of households
   (``Config.community_households``).
5. **Villages** get 3–7 hamlets (村民小组) of rural houses away from rivers and roads; each
   town's seat village gets the town centre: government, school, health centre (医院), market
   and a few walk-ups.

:func:`generate` returns a :class:`District` of GeoDataFrames in EPSG:4490 with the Chinese field
names of the delivered files; ``scripts/build_yucheng_demo.py`` writes them (GBK shapefiles,
GeoPackages, the GCJ-02 compounds) to ``data/districts/yucheng/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for
from gridmap.geo.export import GPKG_DATASET_OPTIONS

GENERATOR_VERSION = "1.0"
SOURCE = "合成数据(synthetic)"
DISTRICT_CODE = "511802"
DISTRICT_NAME = "雨城区"
BOUNDARY_FILE = Path(__file__).resolve().parents[2] / "data" / "boundaries" / "yaan" / "districts.parquet"

ROAD_CLASSES = ("快速路", "主干路", "次干路", "支路", "小区路")
FACILITY_TYPES = ("学校", "幼儿园", "医院", "公园", "农贸市场", "政府")

# code, name, urban part, seat (metres east/north of the core centre) or None
STREETS: tuple[tuple[str, str, bool, tuple[float, float] | None], ...] = (
    ("001", "东城街道", True, None),
    ("002", "西城街道", True, None),
    ("003", "河北街道", True, None),
    ("004", "青江街道", True, None),
    ("005", "大兴街道", True, (6000.0, -2500.0)),
    ("006", "多营街道", True, (-6500.0, -3500.0)),
    ("101", "草坝镇", False, (12000.0, -3500.0)),
    ("102", "合江镇", False, (1000.0, -16000.0)),
    ("103", "碧峰峡镇", False, (-1500.0, 9000.0)),
    ("104", "上里镇", False, (5000.0, 20000.0)),
)

_SETBACK_M = 12.0  # compound walls and buildings stand this far from road centre lines
_OVERSHOOT_M = 2.0  # lines run this far past the line they end on, so that noding always closes faces


@dataclass(frozen=True)
class Config:
    """What to generate. :meth:`small` is a quick variant for tests."""

    seed: int = 511802
    core_center: tuple[float, float] = (103.00, 29.98)
    core_radii_m: tuple[float, float] = (3300.0, 2300.0)
    main_spacing_m: float = 520.0
    minor_spacing_m: float = 200.0
    villages: int = 49
    community_area_km2: tuple[float, float] = (0.2, 1.0)
    community_households: tuple[int, int] = (1100, 3400)
    village_households: tuple[int, int] = (100, 220)
    min_village_km2: float = 2.0
    facilities: tuple[tuple[str, int], ...] = (
        ("医院", 3), ("公园", 5), ("学校", 10), ("农贸市场", 5), ("幼儿园", 10))
    round_decimals: int = 7
    style: str | None = None  # every zone of the core built in this style ("old", "mixed", "new"); None: by ring

    @classmethod
    def highrise(cls, seed: int = 2026) -> "Config":
        """A larger core built as new towns are (mostly 18–33-floor towers in gated compounds), about
        100 communities and no villages: the high-rise pattern the building grain must hold on."""
        return cls(seed=seed, core_radii_m=(3900.0, 2800.0), villages=0, style="new")

    @classmethod
    def small(cls, seed: int = 7) -> "Config":
        """A small core and six villages: seconds to build (the determinism test)."""
        return cls(seed=seed, core_radii_m=(1500.0, 1100.0), main_spacing_m=600.0, villages=6,
                   community_households=(1050, 1600), village_households=(15, 30), min_village_km2=0.5,
                   facilities=(("学校", 2), ("幼儿园", 1), ("医院", 1), ("公园", 1), ("农贸市场", 1)))


@dataclass
class District:
    """The layers, in EPSG:4490, with the field names of the delivered files."""

    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    rivers: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    stats: dict = field(default_factory=dict)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        return {"streets": self.streets, "communities": self.communities, "roads": self.roads,
                "rivers": self.rivers, "compounds": self.compounds, "buildings": self.buildings,
                "facilities": self.facilities}


def load_boundary(path: str | Path = BOUNDARY_FILE, code: str = DISTRICT_CODE):
    """The real district polygon (EPSG:4490) of ``code`` from a districts GeoParquet."""
    frame = gpd.read_parquet(path)
    if frame.crs is not None and frame.crs.to_epsg() != STORAGE_EPSG:
        frame = frame.to_crs(STORAGE_EPSG)
    rows = frame[frame["code"].astype(str) == code]
    if len(rows) != 1:
        raise ValueError(f"{path}: expected one district {code}, found {len(rows)}")
    return rows.geometry.iloc[0]


# -- names (invented; real-sounding) ----------------------------------------------------------------
_COMMUNITY_STEMS = (
    "仓坪 育才 苍坪 新康 姚桥 金凤 柏树 陇西 三雅 桃花 南坝 北郊 濛阳 廊桥 羌江 张家山 沙湾 雅州 熊猫 东门 西门 "
    "南门 北门 文庙 书院 学道 新华 建设 民主 胜利 团结 幸福 康乐 锦江 凤鸣 滨河 滨江 青衣 汉碑 观音阁 金鸡关 "
    "黄家山 百花 翠竹 白鹤 栖凤 龙门 竹溪 茶马 蒙泉 云亭 迎宾 顺河 向阳 朝阳 红旗 友谊 南外 北外 苍溪 挺进 "
    "十字口 水井 石板桥 王家桥 太平 复兴 长春 怡心 月亮湾 后坝 下坝 上坝 中坝 清溪 雅雨 县前 城隍 草桥 陆王 "
    "大北 桥头 河心 兴贤 福田 莲花 雨霖 城后 东坡 玉津").split()
_VILLAGE_STEMS = (
    "石板 红星 水口 龙泉 白马 青龙 凤凰 黄龙 观音 柳坝 茶园 竹林 碧云 桂花 大河 龙溪 金台 银杏 石桥 新农 光明 "
    "永兴 和平 五里 七里 双河 三合 四合 麻柳 枫香 松林 柏林 杉树 杨柳 核桃 板栗 油坊 磨坊 碾子 官田 高坎 平安 "
    "安乐 大坪 小坪 岩口 庙坝 陈家坝 李家沟 王家山 张坪 邓坝 罗坝 周坡 赵家坪 洪川 沙坪 中里 下里 五家口 六合 "
    "白果 凉水 天池 云峰 雾山 万古 太和 鱼泉 龙洞 金花 新庙 古城 梨园 桤木 青杠 尖山 塘坝 堰沟 铁索 望鱼 "
    "孔坪 八步 晏场 严桥 狮子 宝峰 鹿鸣 落星 红岩 黄泥 清水 冷水 回龙 双龙 九龙").split()
_ROAD_STEMS = (
    "雅州 康藏 姚桥 滨江 熊猫 蒙山 青衣 羌江 金凤 苍坪 育才 建设 新民 兴贤 文化 仓坪 大北 西康 南二 北二 "
    "东大 西大 朝阳 迎宾 沙湾 挺进 凤鸣 书院 学道 县前 廊桥 汉碑 水井 百花 翠竹 白鹤 栖凤 茶马 雅雨 碧峰 "
    "周公 三雅 桂花 陇西 后坝 中坝 张家山 黄家山 观音阁 城后 莲花 草桥 福田 玉津 东坡 兴业 和顺 安康 长寿 "
    "清风 明月 银杏 桃园 雨霖 状元 孝廉 太白 尚书 文星 魁星 永安 宝兴 荥经 名山 汉源 天全 芦山 石棉").split()
_ESTATE_STEMS = (
    "锦绣 金色 阳光 翡翠 江湾 天立 上城 御景 蓝湾 碧水 学府 书香 香樟 银杏 紫荆 丽景 怡和 康乐 兴隆 福瑞 嘉禾 "
    "东方 盛世 新城 南苑 北辰 西岭 雅韵 茶语 熊猫 青衣 羌江 雅州 雨城 碧峰 蒙顶 金鸡 凤凰 桃源 听涛 观澜 望江 "
    "临江 沁园 水岸 晨曦 朝晖 馨园 滨江 半岛 公园 春天 金桂 丹桂 玉兰 海棠 芙蓉 竹韵 云栖 映月 星河 天悦 华府 "
    "名门 尚品 龙城 凤栖 鹭岛 翠湖 清华 博雅 和府 永安 泰和").split()
_UNITS = ("电力", "烟草", "邮电", "粮食局", "供销社", "水电", "林业局", "交通局", "教师", "卫校", "税务", "公安",
          "农行", "机械厂", "纺织厂", "茶厂", "化工厂", "建工", "气象局", "地质队", "川农大", "雅中", "供电局", "运输公司")
_ESTATE_SUFFIX = {"tower": ("花园", "华府", "名城", "国际", "华庭", "公馆", "时代", "锦城", "天著"),
                  "walkup": ("小区", "新村", "苑", "家园", "里"),
                  "villa": ("别墅", "山庄", "庄园", "洋房")}


class _Names:
    """Unique names drawn without replacement from stem × suffix (deterministic for the rng); when
    they run out (a large generated district), the same names again with 二, 三 … appended."""

    def __init__(self, rng: np.random.Generator, stems, suffixes):
        combos = [s + x for s in stems for x in suffixes]
        self._pool = [combos[i] for i in rng.permutation(len(combos))]
        self._again = list(reversed(self._pool))
        self._round = 1
        self._used: set[str] = set()

    def take(self) -> str:
        while True:
            while self._pool:
                name = self._pool.pop()
                if name not in self._used:
                    self._used.add(name)
                    return name
            self._round += 1
            self._pool = [name + _cn_number(self._round) for name in reversed(self._again)]

    def reserve(self, names) -> None:
        self._used.update(names)


# -- coordinates --------------------------------------------------------------------------------------
class _Frame:
    """Metres east/north of the core centre in the CGCS2000 Gauss-Krüger zone, and back."""

    def __init__(self, center: tuple[float, float]):
        crs = metric_crs_for(*center)
        self._fwd = Transformer.from_crs(STORAGE_EPSG, crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, STORAGE_EPSG, always_xy=True)
        self.origin = np.array(self._fwd.transform(*center))

    def to_m(self, geoms):
        return shapely.transform(geoms, lambda c: np.column_stack(self._fwd.transform(c[:, 0], c[:, 1])) - self.origin)

    def to_ll(self, geoms):
        def inv(c):
            return np.column_stack(self._inv.transform(c[:, 0] + self.origin[0], c[:, 1] + self.origin[1]))
        return shapely.transform(geoms, inv)


def _rotate(geoms, theta: float):
    c, s = math.cos(theta), math.sin(theta)
    return shapely.transform(geoms, lambda p: np.column_stack([p[:, 0] * c - p[:, 1] * s, p[:, 0] * s + p[:, 1] * c]))


def _rects(cx, cy, length, width, angle) -> np.ndarray:
    """Rectangles (vectorised): centres, side lengths along and across ``angle`` (radians)."""
    cx, cy, length, width, angle = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float))
                                                         for v in (cx, cy, length, width, angle)))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float) / 2.0
    lx = corners[None, :, 0] * length[:, None]
    ly = corners[None, :, 1] * width[:, None]
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + lx * c - ly * s
    y = cy[:, None] + lx * s + ly * c
    return shapely.polygons(np.stack([x, y], axis=-1))


def _round(geoms, decimals: int):
    return shapely.transform(geoms, lambda c: np.round(c, decimals))


def _polys(geom) -> list:
    """The polygon parts of a geometry, largest first."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    return sorted(parts, key=lambda p: -p.area)


def _random_points(poly, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points inside ``poly`` (rejection sampling, vectorised)."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out = np.empty((0, 2))
    while len(out) < n:
        pts = rng.uniform((minx, miny), (maxx, maxy), size=(max(64, n * 8), 2))
        out = np.vstack([out, pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]])
    return out[:n]


def _faces(lines) -> np.ndarray:
    """Faces of the arrangement of ``lines``: noded in one union, then polygonized."""
    noded = shapely.union_all(np.asarray(lines, dtype=object))
    return np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object)


def _inside(geoms, region) -> np.ndarray:
    shapely.prepare(region)
    return shapely.contains(region, shapely.point_on_surface(geoms))


def _line(xy) -> shapely.LineString:
    return shapely.LineString(np.asarray(xy, dtype=float))


def _extend(line, d: float):
    """``line`` lengthened by ``d`` at both ends along its end segments."""
    c = np.asarray(line.coords)
    if len(c) < 2:
        return line
    a = c[0] - c[1]
    b = c[-1] - c[-2]
    a = a / (np.hypot(*a) or 1.0)
    b = b / (np.hypot(*b) or 1.0)
    return _line(np.vstack([c[0] + a * d, c, c[-1] + b * d]))


def _wiggle(p0, p1, rng: np.random.Generator, levels: int = 5, amplitude: float = 0.12) -> np.ndarray:
    """A winding road from p0 to p1: recursive midpoint displacement."""
    pts = np.array([p0, p1], dtype=float)
    amp = amplitude
    for _ in range(levels):
        mids = (pts[:-1] + pts[1:]) / 2.0
        seg = pts[1:] - pts[:-1]
        normal = np.column_stack([-seg[:, 1], seg[:, 0]])
        mids = mids + normal * rng.uniform(-amp, amp, size=(len(mids), 1))
        out = np.empty((len(pts) + len(mids), 2))
        out[0::2] = pts
        out[1::2] = mids
        pts = out
        amp *= 0.55
    return pts


# -- grouping faces into communities -----------------------------------------------------------------
def _adjacency(faces_m: np.ndarray) -> dict[tuple[int, int], float]:
    """Shared border length (m) of every pair of edge-sharing faces."""
    tree = shapely.STRtree(faces_m)
    a, b = tree.query(faces_m, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(faces_m[a]), shapely.boundary(faces_m[b])))
    return {(int(i), int(j)): float(s) for i, j, s in zip(a, b, shared) if s > 1e-6}


def _merge_groups(group: np.ndarray, area: np.ndarray, adj: dict[tuple[int, int], float], *, min_area: float,
                  max_area: float = math.inf, label: np.ndarray | None = None, force: set[int] | None = None,
                  fixed: set[int] | None = None) -> np.ndarray:
    """Merge face groups smaller than ``min_area`` (and those in ``force``) into the neighbour
    group with the longest shared border, preferring one with the same ``label`` and a merged
    area at most ``max_area``. Groups in ``fixed`` never merge away (others may merge into them)."""
    group = group.copy()
    force = set(force or ())
    fixed = set(fixed or ())
    while True:
        ids = np.unique(group[group >= 0])
        g_area = {g: area[group == g].sum() for g in ids}
        todo = [g for g in ids if (g_area[g] < min_area or g in force) and g not in fixed]
        if not todo:
            return group
        g = min(todo, key=lambda k: (k not in force, g_area[k], k))
        border: dict[int, float] = {}
        for (i, j), s in adj.items():
            gi, gj = group[i], group[j]
            if gi == g and gj != g and gj >= 0:
                border[gj] = border.get(gj, 0.0) + s
            elif gj == g and gi != g and gi >= 0:
                border[gi] = border.get(gi, 0.0) + s
        force.discard(g)
        if not border:
            fixed.add(g)  # an island: nothing to merge with
            continue

        def score(k):
            same = label is None or label[k] == label[g]
            fits = g_area[k] + g_area[g] <= max_area
            return (same, fits, border[k], -k)

        target = max(border, key=score)
        group[group == g] = target


def _components(members: np.ndarray, adj: dict[tuple[int, int], float]) -> list[np.ndarray]:
    """Connected components (by shared borders) of a set of face indices."""
    members = [int(m) for m in members]
    parent = {m: m for m in members}

    def find(m):
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    ms = set(members)
    for (i, j) in adj:
        if i in ms and j in ms:
            parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for m in members:
        comps.setdefault(find(m), []).append(m)
    return [np.array(sorted(c)) for c in comps.values()]


# -- the generator ------------------------------------------------------------------------------------
def generate(boundary=None, config: Config = Config()) -> District:
    """The synthetic district (see the module docstring) inside ``boundary`` (EPSG:4490; the real
    雨城区 polygon by default)."""
    return _Generator(load_boundary() if boundary is None else boundary, config).run()


@dataclass
class _Zone:
    geom: object
    theta: float
    style: str


class _Generator:
    def __init__(self, boundary, config: Config):
        self.cfg = config
        self.rng = np.random.default_rng(config.seed)
        self.frame = _Frame(config.core_center)
        self.district_ll = boundary
        self.district_m = self.frame.to_m(boundary)
        parts = _polys(self.district_m)
        self.main_m = parts[0]
        self.exclaves_m = parts[1:]
        self.roads: list[tuple[object, str, str]] = []  # (metric geometry, name, class)
        self.buildings: dict[str, list] = {k: [] for k in ("geom", "no", "estate", "floors", "hh", "kind", "open",
                                                                  "entrances")}
        self.compounds: list[tuple[object, str]] = []
        self.facilities: list[tuple[object, str, str]] = []
        self.stats: dict = {}
        self.road_names = _Names(self.rng, _ROAD_STEMS, ("路", "街", "大道", "巷"))
        self.estate_names = {k: _Names(self.rng, _ESTATE_STEMS, v) for k, v in _ESTATE_SUFFIX.items()}
        self.dorm_names = _Names(self.rng, _UNITS, ("宿舍", "家属院", "小区"))

    # ---------------------------------------------------------------------------------------------
    def run(self) -> District:
        self._core_and_rivers()
        self._zones()
        self._main_roads()
        self._communities()
        self._blocks()
        self._facilities_core()
        self._fill_core()
        self._rural_roads()
        self._villages()
        return self._assemble()

    # -- 1. the core outline, rivers, trunk roads -------------------------------------------------
    def _core_and_rivers(self) -> None:
        rng, (a, b) = self.rng, self.cfg.core_radii_m
        t = np.linspace(0, 2 * np.pi, 241)[:-1]
        r = 1.0 / np.sqrt((np.cos(t) / a) ** 2 + (np.sin(t) / b) ** 2)
        for k in (2, 3, 4, 5):
            r = r * (1 + rng.uniform(0.015, 0.05) * np.cos(k * t + rng.uniform(0, 2 * np.pi)))
        core = shapely.Polygon(np.column_stack([r * np.cos(t), r * np.sin(t)]))
        core = _polys(shapely.intersection(core, self.main_m.buffer(-1500.0)))[0]
        self.core = shapely.simplify(core, 1.0)
        shapely.prepare(self.core)

        # 青衣江: west→east, meandering, swinging wider outside the core
        s = b / 2700.0
        x = np.arange(-60000.0, 60001.0, 50.0)
        ph = rng.uniform(0, 2 * np.pi, 3)
        w = 1 - np.exp(-(x / 6000.0) ** 2)
        y = (0.09 * b + s * (320 * np.sin(2 * np.pi * x / 3300 + ph[0]) + 180 * np.sin(2 * np.pi * x / 1700 + ph[1]))
             + w * 1400 * np.sin(2 * np.pi * x / 21000 + ph[2]))
        self.river = _line(np.column_stack([x, y]))
        self.river_y = lambda q: np.interp(q, x, y)

        # 周公河: from the south, joining the 青衣江 inside the core (2 m past it, so it nodes)
        yt = np.arange(-60000.0, b + 1.0, 50.0)
        ph = rng.uniform(0, 2 * np.pi, 2)
        wt = 1 - np.exp(-(yt / 5000.0) ** 2)
        xt = (0.2 * a + s * 350 * np.sin(2 * np.pi * yt / 2900 + ph[0])
              + wt * 2500 * np.sin(2 * np.pi * yt / 17000 + ph[1]))
        trib = _line(np.column_stack([xt, yt]))
        crossings = shapely.get_parts(shapely.intersection(trib, self.river))
        d = min(trib.project(p) for p in crossings)
        self.tributary = _substring(trib, d + _OVERSHOOT_M)

        # trunk roads: two north–south (bridges), one east–west south of the river
        big = 20000.0
        self.ns1 = _line([(-0.16 * a - 0.12 * big, -big), (-0.16 * a + 0.12 * big, big)])
        self.ns2 = _line([(0.45 * a + 0.08 * big, -big), (0.45 * a - 0.08 * big, big)])
        self.ew = _line([(-big, -0.52 * b - 0.05 * big), (big, -0.52 * b + 0.05 * big)])
        ring = self.core.exterior
        self.trunk_cut = shapely.intersection(np.array([self.ns1, self.ns2, self.ew]), self.core.buffer(_OVERSHOOT_M))
        self.river_core = shapely.intersection(self.river, self.core.buffer(50.0))
        self.trib_core = shapely.intersection(self.tributary, self.core.buffer(50.0))
        self.ring = ring

        # the ring road in four named arcs
        names = ("北环路", "西环路", "南环路", "东环路")
        for i, name in enumerate(names):
            a0 = np.pi / 4 + i * np.pi / 2
            fan = np.linspace(a0, a0 + np.pi / 2, 9)
            wedge = shapely.Polygon([(0, 0), *np.column_stack([1e5 * np.cos(fan), 1e5 * np.sin(fan)])])
            arc = shapely.line_merge(shapely.intersection(ring, wedge))
            for part in shapely.get_parts(arc):
                self.roads.append((part, name, "快速路"))
        for line, name in zip(self.trunk_cut, ("雅州大道", "姚桥大道", "康藏路")):
            for part in shapely.get_parts(line):
                self.roads.append((part, name, "主干路"))

    def _street_rule(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The urban street of points of the core, by river side and trunk roads."""
        a, b = self.cfg.core_radii_m
        north = y > self.river_y(x)
        west1 = x < (-0.16 * a + 0.12 * y)
        west2 = x < (0.45 * a - 0.08 * y)
        south_ew = y < (-0.52 * b + 0.05 * x)
        return np.select(
            [north & west1, north & west2, north, ~south_ew & west1, ~south_ew & west2, ~south_ew, west1],
            ["河北街道", "东城街道", "大兴街道", "西城街道", "东城街道", "大兴街道", "多营街道"], "青江街道")

    # -- 2. zones: trunk roads and rivers cut the core; each zone its own rotated grid -----------------
    def _zones(self) -> None:
        lines = [self.ring, *shapely.get_parts(self.river_core), *shapely.get_parts(self.trib_core),
                 *shapely.get_parts(self.trunk_cut)]
        faces = _faces(lines)
        faces = faces[_inside(faces, self.core) & (shapely.area(faces) > 1.0)]
        cen = shapely.centroid(faces)
        order = np.lexsort((shapely.get_x(cen), -shapely.get_y(cen)))
        self.zones: list[_Zone] = []
        faces = faces[order]
        big = np.flatnonzero(shapely.area(faces) > 0.5e6)
        n_rot = max(2, int(round(0.35 * len(faces))))
        rotated_set = set(self.rng.choice(big if len(big) >= n_rot else np.arange(len(faces)),
                                          size=min(n_rot, len(faces)), replace=False).tolist())
        for k, f in enumerate(faces):
            c = f.centroid
            dist = math.hypot(c.x, c.y) / max(self.cfg.core_radii_m)
            rotated = k in rotated_set
            degrees = self.rng.uniform(20, 38) * self.rng.choice([-1, 1]) if rotated else self.rng.uniform(-7, 7)
            theta = math.radians(degrees)
            style = self.cfg.style or ("old" if dist < 0.38 else ("mixed" if dist < 0.62 else "new"))
            self.zones.append(_Zone(f, theta, style))
        self.zone_tree = shapely.STRtree(np.array([z.geom for z in self.zones]))

    def _grid_positions(self, lo: float, hi: float, spacing: float) -> np.ndarray:
        start = lo + self.rng.uniform(0.3, 0.8) * spacing
        steps = spacing * self.rng.uniform(0.85, 1.15, size=int((hi - lo) / spacing) + 3)
        pos = start + np.concatenate([[0.0], np.cumsum(steps)])
        return pos[pos < hi - 0.3 * spacing]

    def _main_roads(self) -> None:
        """Per zone: main roads at ~``main_spacing_m`` (主干路 and 次干路 alternating) and minor
        roads (支路) at ~``minor_spacing_m`` in the zone's rotated frame, clipped to the zone
        (2 m past its edge). Lines hugging the zone edge are dropped."""
        s_main, s_minor = self.cfg.main_spacing_m, self.cfg.minor_spacing_m
        self.main_lines: list = []
        self.minor_lines: list = []
        for z in self.zones:
            local = _rotate(z.geom, -z.theta)
            minx, miny, maxx, maxy = local.bounds
            edge = z.geom.boundary
            zone_x = z.geom.buffer(_OVERSHOOT_M)
            for axis in (0, 1):
                lo, hi = (minx, maxx) if axis == 0 else (miny, maxy)
                olo, ohi = (miny, maxy) if axis == 0 else (minx, maxx)
                mains = self._grid_positions(lo, hi, s_main)
                minors = self._grid_positions(lo, hi, s_minor)
                if len(mains):
                    minors = minors[np.min(np.abs(minors[:, None] - mains[None, :]), axis=1) > 0.35 * s_minor]
                for kind, positions in (("main", mains), ("minor", minors)):
                    if not len(positions):
                        continue
                    if axis == 0:
                        segs = [_line([(p, olo - 10), (p, ohi + 10)]) for p in positions]
                    else:
                        segs = [_line([(olo - 10, p), (ohi + 10, p)]) for p in positions]
                    segs = _rotate(np.array(segs, dtype=object), z.theta)
                    clipped = shapely.intersection(segs, zone_x)
                    for i, (geom, p) in enumerate(zip(clipped, positions)):
                        pieces = [q for q in shapely.get_parts(geom) if q.geom_type == "LineString" and q.length > 40]
                        if not pieces:
                            continue
                        near_edge = edge.buffer(0.3 * (s_main if kind == "main" else s_minor))
                        hug = np.array([shapely.intersection(q, near_edge).length / q.length for q in pieces])
                        pieces = [q for q, h in zip(pieces, hug) if h < 0.5]
                        if kind == "minor" and self.rng.random() < 0.12:
                            continue  # an irregular grid: some minor roads are missing
                        if not pieces:
                            continue
                        if kind == "main":
                            cls = "主干路" if i % 2 == 0 else "次干路"
                            name = self.road_names.take()
                            self.main_lines.extend(pieces)
                        else:
                            cls, name = "支路", self.road_names.take()
                            self.minor_lines.extend(pieces)
                        for q in pieces:
                            self.roads.append((q, name, cls))

    # -- 3. communities and villages --------------------------------------------------------------
    def _communities(self) -> None:
        fr, rng, cfg = self.frame, self.rng, self.cfg
        # villages: Lloyd-relaxed Voronoi seeds over the rest of the main polygon
        rural = shapely.difference(self.main_m, self.core)
        seeds = _random_points(rural, cfg.villages, rng)
        envelope = shapely.box(*self.district_m.buffer(20000).bounds)
        for _ in range(4):
            cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope,
                                                               ordered=True))
            clipped = shapely.intersection(cells, rural)
            cen = shapely.centroid(clipped)
            ok = ~shapely.is_empty(cen) & shapely.contains(rural, cen)
            seeds = np.where(ok[:, None], np.column_stack([shapely.get_x(cen), shapely.get_y(cen)]), seeds)
        cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope,
                                                                      ordered=True)))
        # village borders wind along ridges and streams: each Voronoi edge displaced, its ends kept
        segments = shapely.get_parts(shapely.union_all(shapely.boundary(cells)))
        segments = segments[shapely.intersects(segments, self.district_m.buffer(3000.0))]
        wound = [_line(_wiggle(*np.asarray(seg.coords)[[0, -1]], rng, levels=6, amplitude=0.07)) for seg in segments]
        edges = shapely.difference(shapely.union_all(np.array(wound, dtype=object)), self.core.buffer(-_OVERSHOOT_M))
        edges = shapely.intersection(edges, self.district_m.buffer(100.0))

        lines_m = [self.ring, self.river, self.tributary, *shapely.get_parts(self.trunk_cut), *self.main_lines,
                   *shapely.get_parts(edges)]
        lines_ll = [self.district_ll.boundary, *fr.to_ll(np.array(lines_m, dtype=object))]
        faces = _faces(lines_ll)
        faces = faces[_inside(faces, self.district_ll)]
        faces_m = fr.to_m(faces)
        area = shapely.area(faces_m)
        adj = _adjacency(faces_m)
        rp = shapely.point_on_surface(faces_m)
        rx, ry = shapely.get_x(rp), shapely.get_y(rp)
        urban = shapely.contains(self.core, rp)

        group = np.full(len(faces), -1)
        # urban faces: one community each, then small ones merged within their street
        street = np.where(urban, self._street_rule(rx, ry), "")
        group[urban] = np.flatnonzero(urban)
        # rural faces: grouped by Voronoi cell; the exclave(s) one village each
        tree = shapely.STRtree(cells)
        fi, ci = tree.query(rp, predicate="within")
        cell_of = np.full(len(faces), -1)
        cell_of[fi] = ci
        base = len(faces)
        group[~urban] = base + cell_of[~urban]
        for k, ex in enumerate(self.exclaves_m):
            inside = shapely.contains(ex.buffer(1.0), rp) & ~urban
            group[inside] = base + len(cells) + k
        lo_u, hi_u = (v * 1e6 for v in cfg.community_area_km2)
        label = np.where(urban, street, "rural")
        group_label = {}
        for g in np.unique(group):
            group_label[g] = label[group == g][0]
        lab = np.array([group_label.get(g, "") for g in range(group.max() + 1)], dtype=object)
        # detached pieces of villages (a Voronoi cell cut by the district outline) go to neighbours
        force = set()
        nxt = group.max() + 1
        for g in np.unique(group[~urban]):
            comps = _components(np.flatnonzero(group == g), adj)
            if len(comps) > 1:
                comps.sort(key=lambda c: -area[c].sum())
                for c in comps[1:]:
                    group[c] = nxt
                    force.add(nxt)
                    nxt += 1
        lab = np.concatenate([lab, np.array(["rural"] * (nxt - len(lab)), dtype=object)])
        urban_ids = set(np.unique(group[urban]).tolist())
        rural_ids = set(np.unique(group[~urban]).tolist())
        # urban merges (never into villages), then rural ones (never into communities)
        group = _merge_groups(group, area, {k: v for k, v in adj.items() if urban[k[0]] and urban[k[1]]},
                              min_area=lo_u, max_area=hi_u, label=lab, fixed=rural_ids)
        group = _merge_groups(group, area, {k: v for k, v in adj.items() if not urban[k[0]] and not urban[k[1]]},
                              min_area=cfg.min_village_km2 * 1e6, label=None, force=force, fixed=urban_ids)

        ids = np.unique(group)
        self.comm_geoms_ll = np.array([shapely.coverage_union_all(faces[group == g]) for g in ids], dtype=object)
        self.comm_geoms_m = fr.to_m(self.comm_geoms_ll)
        self.comm_urban = np.array([bool(urban[group == g][0]) for g in ids])
        comm_rp = shapely.point_on_surface(self.comm_geoms_m)
        cx, cy = shapely.get_x(comm_rp), shapely.get_y(comm_rp)
        comm_street = np.where(self.comm_urban, self._street_rule(cx, cy), "")
        # villages: the street whose seat is nearest, then detached pieces of streets mended
        seats = [(name, xy) for _, name, _, xy in STREETS if xy is not None]
        sxy = np.array([xy for _, xy in seats])
        nearest = np.argmin(np.hypot(cx[:, None] - sxy[None, :, 0], cy[:, None] - sxy[None, :, 1]), axis=1)
        comm_street = np.where(self.comm_urban, comm_street, np.array([n for n, _ in seats], dtype=object)[nearest])
        comm_street = self._mend_streets(comm_street)
        self.comm_street = comm_street.astype(object)
        self.comm_area_m2 = shapely.area(self.comm_geoms_m)

    def _mend_streets(self, street: np.ndarray) -> np.ndarray:
        """Villages of a street cut off from the rest of it join the neighbouring street with the
        longest shared border (the exclave may stay detached)."""
        geoms = self.comm_geoms_m
        adj = _adjacency(geoms)
        exclave = np.zeros(len(geoms), dtype=bool)
        for ex in self.exclaves_m:
            exclave |= shapely.contains(ex.buffer(1.0), shapely.point_on_surface(geoms))
        street = street.copy()
        for _ in range(20):
            changed = False
            for name in np.unique(street):
                members = np.flatnonzero((street == name) & ~exclave)
                comps = _components(members, adj)
                if len(comps) < 2:
                    continue
                comps.sort(key=lambda c: -shapely.area(geoms[c]).sum())
                for comp in comps[1:]:
                    comp = [c for c in comp if not self.comm_urban[c]]
                    border: dict[str, float] = {}
                    for (i, j), s in adj.items():
                        for u, v in ((i, j), (j, i)):
                            if u in comp and street[v] != name:
                                border[street[v]] = border.get(street[v], 0.0) + s
                    if border and comp:
                        street[comp] = max(border, key=lambda k: (border[k], k))
                        changed = True
            if not changed:
                break
        return street

    # -- 4. blocks ------------------------------------------------------------------------------------
    def _blocks(self) -> None:
        lines = [self.ring, *shapely.get_parts(self.river_core), *shapely.get_parts(self.trib_core),
                 *shapely.get_parts(self.trunk_cut), *self.main_lines, *self.minor_lines]
        faces = _faces(lines)
        faces = faces[_inside(faces, self.core) & (shapely.area(faces) > 100.0)]
        rp = shapely.point_on_surface(faces)
        urban_idx = np.flatnonzero(self.comm_urban)
        tree = shapely.STRtree(self.comm_geoms_m[urban_idx])
        bi, ci = tree.query(rp, predicate="within")
        comm = np.full(len(faces), -1)
        comm[bi] = urban_idx[ci]
        zi_b, zi = self.zone_tree.query(rp, predicate="within")
        zone = np.full(len(faces), -1)
        zone[zi_b] = zi
        keep = (comm >= 0) & (zone >= 0)
        self.blocks = faces[keep]
        self.block_comm = comm[keep]
        self.block_zone = zone[keep]
        inner = shapely.buffer(self.blocks, -_SETBACK_M, join_style="mitre")
        self.block_inner = np.array([_polys(g)[0] if _polys(g) else shapely.Polygon() for g in inner], dtype=object)
        self.block_inner_area = shapely.area(self.block_inner)
        self.block_use = np.full(len(self.blocks), "", dtype=object)
        self.stats["blocks"] = int(len(self.blocks))

    # -- 5. facilities -----------------------------------------------------------------------------
    def _site(self, region, center, theta: float, target: float) -> object | None:
        """A rectangle of about ``target`` m² around ``center`` inside ``region`` (largest part)."""
        aspect = self.rng.uniform(1.0, 1.6)
        for grow in (1.0, 1.25, 1.6, 2.2):
            w = math.sqrt(target * aspect) * grow
            h = target / math.sqrt(target * aspect) * grow
            rect = _rects(center.x, center.y, w, h, theta)[0]
            parts = _polys(shapely.intersection(rect, region))
            if parts and parts[0].area >= 0.85 * target:
                return parts[0]
        parts = _polys(region)
        return parts[0] if parts and parts[0].area >= 0.6 * target else None

    _AREAS = {"学校": (15000, 30000), "幼儿园": (2500, 6500), "医院": (12000, 30000), "公园": (15000, 40000),
              "农贸市场": (3000, 8000), "政府": (3000, 8000)}

    def _facilities_core(self) -> None:
        rng = self.rng
        per_comm: dict[int, int] = {}
        placed: dict[str, list] = {}
        stems = _Names(rng, _COMMUNITY_STEMS, ("",))
        program: list[tuple[str, str, float, str | None]] = [("政府", "雨城区人民政府", 15000.0, "东城街道")]
        for code, name, urban, _ in STREETS:
            if urban:
                program.append(("政府", f"{name}办事处", float(rng.uniform(3000, 7000)), name))
        counters = {"学校": 0}
        for kind, n in self.cfg.facilities:
            for i in range(n):
                lo, hi = self._AREAS[kind]
                target = float(rng.uniform(lo, hi))
                if kind == "学校":
                    counters["学校"] += 1
                    name = f"雨城区第{_cn_number(counters['学校'])}{'中学' if i % 3 == 0 else '小学'}"
                elif kind == "医院":
                    name = ("雨城区人民医院", "雨城区中医医院", "雨城区妇幼保健院", "雨城区第二人民医院")[i % 4]
                elif kind == "公园":
                    name = ("滨江公园" if i == 0 else stems.take() + "公园")
                elif kind == "农贸市场":
                    name = stems.take() + "农贸市场"
                else:
                    name = f"雨城区{stems.take()}幼儿园"
                program.append((kind, name, target, None))
        centre = shapely.Point(0, 0)
        streets = self.comm_street[self.block_comm]
        free = self.block_inner_area
        # land for homes per community: a facility must leave at least 70,000 m² of blocks
        # (1,000 households at a conservative 0.015 per m²)
        homes = np.bincount(self.block_comm, weights=free, minlength=len(self.comm_geoms_m))
        for kind, name, target, street in program:
            ok = (self.block_use == "") & (free >= target * 1.05)
            ok &= np.array([per_comm.get(c, 0) < 1 for c in self.block_comm])
            ok &= homes[self.block_comm] - free >= 70000.0
            if street is not None:
                ok &= streets == street
            if kind == "公园" and name == "滨江公园":
                ok &= shapely.dwithin(self.blocks, self.river_core, 30.0)
            cand = np.flatnonzero(ok)
            if not len(cand):
                continue
            same = placed.get(kind, [])
            if same:
                d = np.min(shapely.distance(shapely.centroid(self.blocks[cand])[:, None], np.array(same)[None, :]), axis=1)
                far = cand[d > 900.0]
                cand = far if len(far) else cand
            if name == "雨城区人民政府":
                b = cand[np.argmin(shapely.distance(shapely.centroid(self.blocks[cand]), centre))]
            else:
                b = int(rng.choice(cand))
            zone = self.zones[self.block_zone[b]]
            geom = self._site(self.block_inner[b], shapely.point_on_surface(self.block_inner[b]), zone.theta, target)
            if geom is None:
                continue
            self.block_use[b] = "facility"
            homes[self.block_comm[b]] -= free[b]
            per_comm[self.block_comm[b]] = per_comm.get(self.block_comm[b], 0) + 1
            placed.setdefault(kind, []).append(geom.centroid)
            self.facilities.append((geom, name, kind))

    # -- 6. buildings in the core ------------------------------------------------------------------
    _STYLE = {  # block use probabilities by zone style
        "old": {"walkup": 0.45, "open_walkup": 0.3, "tower": 0.2, "open_lowrise": 0.05},
        "mixed": {"tower": 0.45, "walkup": 0.35, "open_walkup": 0.1, "villa": 0.05, "open_lowrise": 0.05},
        "new": {"tower": 0.62, "walkup": 0.2, "villa": 0.1, "open_lowrise": 0.08},
    }

    def _template(self, kind: str) -> dict:
        rng = self.rng
        if kind == "tower":
            u = int(rng.choice([2, 2, 3, 3, 4]))
            length, width = 17.0 * u + 2.0, 16.0 + 2.0 * (u >= 3)
            return dict(kind="tower", u=u, length=length, width=width, dx=length + rng.uniform(14, 22),
                        dy=width + rng.uniform(34, 46), base=int(rng.integers(18, 34)), stagger=bool(rng.random() < 0.5))
        if kind in ("walkup", "open_walkup"):
            s = int(rng.choice([2, 3]))
            length = 13.0 * s + 1.0
            return dict(kind="walkup", s=s, length=length, width=12.0, dx=length + rng.uniform(7, 12),
                        dy=12.0 + rng.uniform(14, 20), floors=int(rng.choice([6, 7])), stagger=False)
        if kind == "villa":
            hh = int(rng.choice([1, 2, 3]))
            length = {1: 14.0, 2: 20.0, 3: 27.0}[hh]
            return dict(kind="villa", hh=hh, length=length, width=12.0, dx=length + 9.0, dy=24.0, stagger=True)
        return dict(kind="lowrise", length=12.0, width=10.0, dx=19.0, dy=21.0, stagger=False)  # open_lowrise

    def _lattice(self, region, theta: float, t: dict, *, margin: float = 4.0):
        """Buildings of template ``t`` on a lattice in ``region``'s rotated frame, kept where wholly
        inside ``region`` shrunk by ``margin``. Returns (footprints, row, col, frame info)."""
        rng = self.rng
        local = _rotate(region, -theta)
        minx, miny, maxx, maxy = local.bounds
        us = np.arange(minx - t["dx"] + rng.uniform(0, t["dx"]), maxx + t["dx"], t["dx"])
        vs = np.arange(maxy + t["dy"] - rng.uniform(0, t["dy"]), miny - t["dy"], -t["dy"])  # north first
        U, V = np.meshgrid(us, vs)
        row, col = np.meshgrid(np.arange(len(us)), np.arange(len(vs)))[::-1]
        if t.get("stagger"):
            U = U + (row % 2) * t["dx"] / 2.0
        jitter = 1.5
        U = U + rng.uniform(-jitter, jitter, U.shape)
        V = V + rng.uniform(-jitter, jitter, V.shape)
        c, s = math.cos(theta), math.sin(theta)
        x, y = U * c - V * s, U * s + V * c
        length = np.full(x.size, t["length"]) if np.isscalar(t["length"]) else t["length"]
        if t["kind"] == "lowrise":
            length = rng.uniform(10, 14, x.size)
            width = rng.uniform(9, 12, x.size)
        else:
            width = np.full(x.size, t["width"])
        fps = _rects(x.ravel(), y.ravel(), length, width, theta)
        shrunk = region.buffer(-margin, join_style="mitre")
        shapely.prepare(shrunk)
        keep = shapely.contains_properly(shrunk, fps)
        return fps[keep], row.ravel()[keep], col.ravel()[keep], (vs, us, minx, maxx)

    def _households(self, t: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        if t["kind"] == "tower":
            floors = np.clip(t["base"] + rng.integers(-3, 4, n), 18, 33)
            return floors, np.clip(floors * 2 * t["u"], 70, 260)
        if t["kind"] == "walkup":
            floors = np.where(rng.random(n) < 0.8, t["floors"], 13 - t["floors"])  # 6 or 7
            return floors, floors * t["s"] * 2
        if t["kind"] == "villa":
            return rng.integers(2, 4, n), np.full(n, t["hh"])
        return rng.integers(2, 5, n), rng.integers(1, 4, n)

    def _parts(self, b: int) -> list[tuple[object, object]]:
        """The block's inner polygon split into 1–3 parts (several compounds per block), each with
        the half-plane its internal roads may use."""
        inner = self.block_inner[b]
        area = self.block_inner_area[b]
        theta = self.zones[self.block_zone[b]].theta
        n = 1
        if area > 18000 and self.rng.random() < 0.45:
            n = 2 if area < 45000 or self.rng.random() < 0.6 else 3
        if n == 1:
            return [(inner, self.blocks[b].buffer(_OVERSHOOT_M))]
        local = _rotate(inner, -theta)
        minx, miny, maxx, maxy = local.bounds
        along_u = (maxx - minx) >= (maxy - miny)
        lo, hi = (minx, maxx) if along_u else (miny, maxy)
        cuts = lo + (hi - lo) * np.sort(self.rng.uniform(0.3, 0.7, n - 1)) if n == 2 else \
            lo + (hi - lo) * np.array([1 / 3, 2 / 3]) + self.rng.uniform(-0.05, 0.05, 2) * (hi - lo)
        edges = np.concatenate([[lo - 1e4], cuts, [hi + 1e4]])
        out = []
        for k in range(n):
            a0, a1 = edges[k] + (4.0 if k else 0.0), edges[k + 1] - (4.0 if k < n - 1 else 0.0)
            box = shapely.box(a0, miny - 1e4, a1, maxy + 1e4) if along_u else shapely.box(minx - 1e4, a0, maxx + 1e4, a1)
            half = _rotate(box, theta)
            for p in _polys(shapely.intersection(inner, half))[:1]:
                if p.area > 1500:
                    out.append((p, shapely.intersection(self.blocks[b].buffer(_OVERSHOOT_M), half)))
        return out

    def _fill_core(self) -> None:
        rng = self.rng
        lo_hh, hi_hh = self.cfg.community_households
        cap = 4950
        order = rng.permutation(len(self.blocks))
        by_comm: dict[int, list[int]] = {}
        for b in order:
            by_comm.setdefault(int(self.block_comm[b]), []).append(int(b))
        totals = {}
        for comm in sorted(by_comm):
            target = int(rng.integers(lo_hh, hi_hh + 1))
            total = 0
            first = len(self.buildings["hh"])
            blocks = [b for b in by_comm[comm] if self.block_use[b] == "" and self.block_inner_area[b] > 1500]
            for rnd in range(2):
                left = float(sum(self.block_inner_area[b] for b in blocks if self.block_use[b] == ""))
                for b in blocks:
                    if self.block_use[b] != "":
                        continue
                    style = self._STYLE[self.zones[self.block_zone[b]].style]
                    # a conservative 0.012 households per m² of the blocks left: towers when short, and
                    # land-hungry villas or old houses only when the blocks after this one suffice
                    need = target - total
                    short = need > 0.012 * left
                    left -= self.block_inner_area[b]
                    spare = need < 0.012 * left
                    room = min(cap, int(target * 1.05)) - total
                    if total >= target:  # target reached: shops, offices, vacant land, a few old houses
                        if rng.random() < 0.8:
                            self.block_use[b] = "empty"
                            continue
                        kind = "open_lowrise"
                        room = min(cap - total, int(rng.integers(5, 25)))
                    elif rnd == 1 or short:
                        kind = "tower"
                    else:
                        kind = str(rng.choice(list(style), p=list(style.values())))
                        if kind in ("villa", "open_lowrise") and not spare:
                            kind = "walkup"
                        if kind == "villa":  # villa estates are small
                            room = min(room, int(rng.integers(30, 90)))
                    total += self._build_block(b, kind, room)
                    if self.block_use[b] == "":
                        self.block_use[b] = "empty"
                if total >= min(target, lo_hh) or rnd == 1:
                    break
                for b in blocks:  # second round: empty blocks may take towers
                    if self.block_use[b] == "empty":
                        self.block_use[b] = ""
            if total < lo_hh:  # still short: the community's towers rise to 31–33 floors
                total += self._densify(first, lo_hh - total)
            totals[comm] = total
        self.urban_totals = totals

    def _densify(self, first: int, need: int) -> int:
        B = self.buildings
        added = 0
        for i in range(first, len(B["hh"])):
            if B["kind"][i] != "tower" or added >= need:
                continue
            per_floor = B["hh"][i] // B["floors"][i] if B["hh"][i] < 260 else 0
            if not per_floor:
                continue
            floors = int(self.rng.integers(31, 34))
            hh = int(min(260, floors * per_floor))
            added += hh - B["hh"][i]
            B["floors"][i], B["hh"][i] = floors, hh
        return added

    def _build_block(self, b: int, kind: str, room: int) -> int:
        """Buildings (and compounds) of one block; at most ``room`` households. Returns the households."""
        if room <= 0:
            return 0
        rng = self.rng
        theta = self.zones[self.block_zone[b]].theta
        is_open = kind.startswith("open_")
        parts = [(self.block_inner[b], None)] if is_open else self._parts(b)
        added = 0
        for region, halfplane in parts:
            t = self._template(kind)
            fps, row, col, (vs, us, minx, maxx) = self._lattice(region, theta, t)
            if t["kind"] == "tower" and t["u"] > 2:  # long slabs may not fit an odd block: try a shorter tower
                t2 = self._template(kind) | {"u": 2, "length": 36.0, "width": 16.0}
                t2["dx"] = 36.0 + t["dx"] - t["length"]
                alt = self._lattice(region, theta, t2)
                if len(alt[0]) * 2 * 2 > len(fps) * 2 * t["u"]:
                    t, (fps, row, col, (vs, us, minx, maxx)) = t2, alt
            if is_open:
                sel = rng.random(len(fps)) < (rng.uniform(0.55, 0.85) if kind == "open_walkup" else rng.uniform(0.15, 0.35))
                fps, row, col = fps[sel], row[sel], col[sel]
            if not len(fps):
                continue
            floors, hh = self._households(t, len(fps))
            csum = np.cumsum(hh)
            n = int(np.searchsorted(csum, room - added, side="right"))
            if n == 0:
                break
            if n < len(fps) and not is_open:
                # a compound built in part: its wall runs along the gap below the last row built
                v_cut = vs[row[n - 1]] - t["dy"] / 2.0
                keep_box = _rotate(shapely.box(minx - 1e4, v_cut, maxx + 1e4, vs[0] + 1e4), theta)
                region = _polys(shapely.intersection(region, keep_box))[0]
                halfplane = shapely.intersection(halfplane, keep_box)
            fps, row, col, floors, hh = fps[:n], row[:n], col[:n], floors[:n], hh[:n]
            added += int(hh.sum())
            self.block_use[b] = kind
            B = self.buildings
            B["geom"].extend(fps)
            B["floors"].extend(floors.tolist())
            B["hh"].extend(hh.tolist())
            B["kind"].extend([t["kind"]] * n)
            B["entrances"].extend([int(t.get("u", t.get("s", 1)))] * n)  # 单元 (stairwells) per building
            if is_open:
                B["estate"].extend([""] * n)
                B["no"].extend([None] * n)
                B["open"].extend([True] * n)
                continue
            if t["kind"] == "walkup" and rng.random() < 0.35:
                name = self.dorm_names.take()
            else:
                name = self.estate_names[t["kind"]].take()
            B["estate"].extend([name] * n)
            B["no"].extend([f"{k}栋" for k in range(1, n + 1)])
            B["open"].extend([False] * n)
            self.compounds.append((region, name))
            # internal roads (小区路) along the gaps between building rows, out to the public road
            rows = np.unique(row)
            if len(rows) >= 3 and region.area > 12000:
                mid = rows[len(rows) // 2 - 1]
                v = vs[mid] - t["dy"] / 2.0
                line = _rotate(_line([(minx - 200, v), (maxx + 200, v)]), theta)
                if not t.get("stagger"):
                    cols = np.unique(col)
                    if len(cols) >= 4:
                        u = us[cols[len(cols) // 2 - 1]] + t["dx"] / 2.0
                        line = shapely.union(line, _rotate(_line([(u, vs[0] + 200), (u, vs[-1] - 200)]), theta))
                road = shapely.intersection(line, halfplane)
                for part in shapely.get_parts(shapely.line_merge(road) if road.geom_type == "MultiLineString" else road):
                    if part.geom_type == "LineString" and part.length > 30:
                        self.roads.append((part, f"{name}内部道路", "小区路"))
            if added >= room:
                break
        return added

    # -- 7. rural roads, villages, hamlets, town centres -------------------------------------------------
    def _rural_roads(self) -> None:
        rng = self.rng
        ring = self.ring
        routes = [
            ("国道318线", "主干路", None, (-30000.0, 0.0)),
            ("国道318线", "主干路", None, self.seats_xy("草坝镇")),
            ("雅碧路", "主干路", None, self.seats_xy("碧峰峡镇")),
            ("雅上路", "次干路", self.seats_xy("碧峰峡镇"), self.seats_xy("上里镇")),
            ("雅合路", "主干路", None, self.seats_xy("合江镇")),
            ("大兴路", "次干路", None, self.seats_xy("大兴街道")),
            ("多营路", "次干路", None, self.seats_xy("多营街道")),
        ]
        lines = []
        for name, cls, start, end in routes:
            end_pt = shapely.Point(end)
            if start is None:
                p0 = ring.interpolate(ring.project(end_pt))
                inward = -np.array([p0.x, p0.y]) / (math.hypot(p0.x, p0.y) or 1.0)
                start = tuple(np.array([p0.x, p0.y]) + inward * _OVERSHOOT_M)
            pts = _wiggle(start, end, rng)
            line = shapely.intersection(_line(pts), self.district_m)
            line = shapely.difference(line, self.core.buffer(-_OVERSHOOT_M - 0.5))
            for part in shapely.get_parts(shapely.line_merge(line) if line.geom_type == "MultiLineString" else line):
                if part.geom_type == "LineString" and part.length > 50:
                    self.roads.append((part, name, cls))
                    lines.append(part)
        self.rural_road_lines = lines

    def seats_xy(self, name: str) -> tuple[float, float]:
        return next(xy for _, n, _, xy in STREETS if n == name)

    def _villages(self) -> None:
        rng = self.rng
        obstacles = [self.river, self.tributary, *self.rural_road_lines]
        obst_tree = shapely.STRtree(np.array(obstacles, dtype=object))
        self.village_totals: dict[int, int] = {}
        village_idx = np.flatnonzero(~self.comm_urban)
        towns = [n for _, n, urban, xy in STREETS if not urban and xy is not None]
        seat_village: dict[int, str] = {}
        for town in towns:
            mine = village_idx[self.comm_street[village_idx] == town]
            if not len(mine):
                continue
            seat = shapely.Point(self.seats_xy(town))
            inside = [v for v in mine if self.comm_geoms_m[v].contains(seat)]
            v = inside[0] if inside else mine[np.argmin(shapely.distance(self.comm_geoms_m[mine], seat))]
            seat_village[int(v)] = town
        lo, hi = self.cfg.village_households
        for v in village_idx:
            poly = self.comm_geoms_m[v]
            inner = poly.buffer(-15.0)
            shapely.prepare(inner)
            blocked = []
            total = 0
            if v in seat_village:
                total += self._town_centre(seat_village[v], poly, inner, obst_tree, blocked)
            target = int(rng.integers(lo, hi + 1))
            total += self._hamlets(v, inner, target, obst_tree, blocked)
            self.village_totals[int(v)] = total

    def _clear(self, geoms, obst_tree, river_m: float, road_m: float) -> np.ndarray:
        """Which of ``geoms`` keep ``river_m`` from rivers and ``road_m`` from rural roads."""
        ok = np.ones(len(geoms), dtype=bool)
        for d, idx in ((river_m, [0, 1]), (road_m, None)):
            gi, oi = obst_tree.query(geoms, predicate="dwithin", distance=d)
            hit = np.isin(oi, idx) if idx is not None else ~np.isin(oi, [0, 1])
            ok[gi[hit]] = False
        return ok

    def _town_centre(self, town: str, poly, inner, obst_tree, blocked: list) -> int:
        rng = self.rng
        seat = shapely.Point(self.seats_xy(town))
        if not inner.contains(seat):
            seat = inner.point_on_surface() if not inner.is_empty else poly.point_on_surface()
        program = [("政府", f"{town}人民政府", (2500, 4000)), ("学校", f"{town}中心小学", (10000, 16000)),
                   ("医院", f"{town}卫生院", (5500, 8000)), ("农贸市场", f"{town}农贸市场", (2500, 4500))]
        if town in ("碧峰峡镇", "合江镇"):
            program.append(("幼儿园", f"{town}中心幼儿园", (2000, 3500)))
        theta = rng.uniform(-0.5, 0.5)
        for kind, name, (a0, a1) in program:
            target = rng.uniform(a0, a1)
            for _ in range(60):
                ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(60, 320)
                w = math.sqrt(target * 1.3)
                rect = _rects(seat.x + dist * math.cos(ang), seat.y + dist * math.sin(ang), w, target / w, theta)[0]
                if not inner.contains(rect) or not self._clear(np.array([rect]), obst_tree, 30.0, 12.0)[0]:
                    continue
                if any(rect.distance(g) < 12.0 for g in blocked):
                    continue
                blocked.append(rect)
                self.facilities.append((rect, name, kind))
                break
        # a few walk-ups round the seat (场镇)
        t = self._template("walkup")
        region = shapely.intersection(seat.buffer(220.0), inner)
        if region.is_empty:
            return 0
        fps, _, _, _ = self._lattice(_polys(region)[0], theta, t, margin=2.0)
        ok = self._clear(fps, obst_tree, 30.0, 14.0)
        if blocked:
            ok &= ~np.any(shapely.dwithin(fps[:, None], np.array(blocked, dtype=object)[None, :], 10.0), axis=1)
        fps = fps[ok]
        fps = fps[np.argsort(shapely.distance(fps, seat), kind="stable")][: int(rng.integers(5, 10))]
        if not len(fps):
            return 0
        floors, hh = self._households(t, len(fps))
        self._add(fps, floors, hh, "walkup", estate="", numbers=None, open_=True, entrances=t["s"])
        blocked.extend(fps)
        return int(hh.sum())

    def _hamlets(self, v: int, inner, target: int, obst_tree, blocked: list) -> int:
        """Rural houses (1–2 households) in 3–7 hamlets of the village until ``target`` households."""
        rng = self.rng
        if inner.is_empty:
            return 0
        hh = rng.choice([1, 2], p=[0.25, 0.75], size=int(target) + 2)
        n = int(np.searchsorted(np.cumsum(hh), target)) + 1
        hh = hh[:n]
        n_h = int(rng.integers(3, 8))
        share = rng.dirichlet(np.full(n_h, 2.0))
        per = np.maximum(rng.multinomial(n - n_h, share) + 1, 1)
        centres = _random_points(inner, n_h * 6, rng)
        c_ok = self._clear(shapely.points(centres), obst_tree, 120.0, 40.0)
        centres = np.vstack([centres[c_ok], centres[~c_ok]])  # prefer sites clear of rivers and roads
        chosen = [centres[0]]
        for p in centres[1:]:
            if len(chosen) == n_h:
                break
            if min(np.hypot(*(p - q)) for q in chosen) > 450.0:
                chosen.append(p)
        centres = np.array(chosen)
        per = per[: len(centres)]
        per[-1] += n - per.sum()
        theta = rng.uniform(-0.6, 0.6)
        spacing = 26.0
        c, s = math.cos(theta), math.sin(theta)
        # one lattice per village: cells are used once, so houses never overlap
        loc = centres @ np.array([[c, -s], [s, c]])  # into the lattice frame
        k = int(math.ceil(math.sqrt(per.max() * 4.0))) + 2
        ii, jj = [], []
        for (u, w) in loc:
            i0, j0 = int(round(u / spacing)), int(round(w / spacing))
            gi, gj = np.meshgrid(np.arange(i0 - k, i0 + k + 1), np.arange(j0 - k, j0 + k + 1))
            ii.append(gi.ravel())
            jj.append(gj.ravel())
        cells = np.unique(np.column_stack([np.concatenate(ii), np.concatenate(jj)]), axis=0)
        U = cells[:, 0] * spacing + rng.uniform(-3, 3, len(cells))
        W = cells[:, 1] * spacing + rng.uniform(-3, 3, len(cells))
        x, y = U * c - W * s, U * s + W * c
        length = rng.uniform(9, 14, len(cells))
        width = rng.uniform(8, 11, len(cells))
        fps = _rects(x, y, length, width, theta + rng.normal(0, 0.12, len(cells)))
        ok = shapely.contains_properly(inner, fps) & self._clear(fps, obst_tree, 30.0, 12.0)
        if blocked:
            ok &= ~np.any(shapely.dwithin(fps[:, None], np.array(blocked, dtype=object)[None, :], 8.0), axis=1)
        idx = np.flatnonzero(ok)
        if not len(idx):
            return 0
        d = np.hypot(x[idx, None] - centres[None, :, 0], y[idx, None] - centres[None, :, 1])
        d = d * rng.uniform(0.8, 1.25, d.shape)  # ragged hamlet edges
        owner = np.argmin(d, axis=1)
        houses, groups = [], []
        for h in range(len(centres)):
            mine = idx[owner == h]
            mine = mine[np.argsort(d[owner == h, h], kind="stable")][: per[h]]
            houses.append(mine)
            groups.append(np.full(len(mine), h + 1))
        houses = np.concatenate(houses)
        groups = np.concatenate(groups)
        hh = hh[: len(houses)]
        if len(hh) < len(houses):
            houses, groups = houses[: len(hh)], groups[: len(hh)]
        floors = rng.choice([1, 2, 3], p=[0.25, 0.55, 0.2], size=len(houses))
        numbers = np.zeros(len(houses), dtype=int)
        for h in np.unique(groups):
            numbers[groups == h] = np.arange(1, (groups == h).sum() + 1)
        labels = [f"{g}组{m}号" for g, m in zip(groups, numbers)]
        self._add(fps[houses], floors, hh, "rural", estate="", numbers=labels, open_=False)
        return int(hh.sum())

    def _add(self, fps, floors, hh, kind, *, estate: str, numbers, open_: bool, entrances: int = 1) -> None:
        B = self.buildings
        n = len(fps)
        B["entrances"].extend([int(entrances)] * n)
        B["geom"].extend(fps)
        B["floors"].extend(np.asarray(floors).tolist())
        B["hh"].extend(np.asarray(hh).tolist())
        B["kind"].extend([kind] * n)
        B["estate"].extend([estate] * n)
        B["no"].extend(numbers if numbers is not None else [None] * n)
        B["open"].extend([open_] * n)

    # -- 8. codes, names, frames ------------------------------------------------------------------
    def _assemble(self) -> District:
        fr, rng, dec = self.frame, self.rng, self.cfg.round_decimals
        crs = f"EPSG:{STORAGE_EPSG}"

        # community codes: per street, 社区 001… then 村 201…, north to south in 1 km rows, west to east
        rp = shapely.point_on_surface(self.comm_geoms_m)
        cx, cy = shapely.get_x(rp), shapely.get_y(rp)
        urban_names = _Names(rng, _COMMUNITY_STEMS, ("",))
        village_names = _Names(rng, [s for s in _VILLAGE_STEMS if s not in _COMMUNITY_STEMS], ("",))
        street_code = {name: DISTRICT_CODE + code for code, name, _, _ in STREETS}
        codes = np.empty(len(rp), dtype=object)
        names = np.empty(len(rp), dtype=object)
        for name in street_code:
            for urban, first, pool, suffix in ((True, 1, urban_names, "社区"), (False, 201, village_names, "村")):
                mine = np.flatnonzero((self.comm_street == name) & (self.comm_urban == urban))
                mine = mine[np.lexsort((cx[mine], -np.floor(cy[mine] / 1000.0)))]
                for k, i in enumerate(mine):
                    codes[i] = f"{street_code[name]}{first + k:03d}"
                    names[i] = pool.take() + suffix
        order = np.argsort(codes.astype(str), kind="stable")
        communities = gpd.GeoDataFrame({
            "社区代码": codes[order].astype(str), "社区名称": names[order].astype(str),
            "街道名称": self.comm_street[order].astype(str), "来源": SOURCE},
            geometry=self.comm_geoms_ll[order], crs=crs)

        present = [n for n in street_code if (self.comm_street == n).any()]
        street_geoms = [shapely.coverage_union_all(self.comm_geoms_ll[self.comm_street == n]) for n in present]
        streets = gpd.GeoDataFrame({"街道代码": [street_code[n] for n in present], "街道名称": present, "来源": SOURCE},
                                   geometry=street_geoms, crs=crs)

        # buildings: open buildings numbered along their nearest named road (odd numbers)
        B = self.buildings
        geoms_m = np.array(B["geom"], dtype=object)
        numbers = np.array(B["no"], dtype=object)
        is_open = np.array(B["open"], dtype=bool)
        if is_open.any():
            named = [(g, n) for g, n, c in self.roads if c != "小区路"]
            tree = shapely.STRtree(np.array([g for g, _ in named], dtype=object))
            near = tree.query_nearest(shapely.centroid(geoms_m[is_open]), all_matches=False)[1]
            road = np.array([named[i][1] for i in near], dtype=object)
            seq = pd.Series(road).groupby(road).cumcount().to_numpy() * 2 + 1
            numbers[is_open] = [f"{r}{k}号" for r, k in zip(road, seq)]
        buildings = gpd.GeoDataFrame({
            "楼栋号": numbers.astype(str), "小区名称": np.array(B["estate"], dtype=object).astype(str),
            "层数": np.array(B["floors"], dtype=np.int32), "户数": np.array(B["hh"], dtype=np.int32),
            "单元数": np.array(B["entrances"], dtype=np.int32), "来源": SOURCE},
            geometry=_round(fr.to_ll(geoms_m), dec), crs=crs)
        kinds = np.array(B["kind"], dtype=object)

        compounds = gpd.GeoDataFrame({"小区名称": [n for _, n in self.compounds], "来源": SOURCE},
                                     geometry=_round(fr.to_ll(np.array([g for g, _ in self.compounds], dtype=object)), dec),
                                     crs=crs)

        road_geoms = fr.to_ll(np.array([g for g, _, _ in self.roads], dtype=object))
        roads = gpd.GeoDataFrame({"道路名称": [n for _, n, _ in self.roads], "道路等级": [c for _, _, c in self.roads],
                                  "来源": SOURCE}, geometry=_round(road_geoms, dec), crs=crs)
        roads = roads[shapely.get_type_id(roads.geometry.values) == 1].reset_index(drop=True)

        river_rows = []
        for name, line in (("青衣江", self.river), ("周公河", self.tributary)):
            clipped = shapely.intersection(fr.to_ll(line), self.district_ll)
            merged = shapely.line_merge(clipped) if clipped.geom_type == "MultiLineString" else clipped
            for part in shapely.get_parts(merged):
                if part.geom_type == "LineString":
                    river_rows.append((name, part))
        rivers = gpd.GeoDataFrame({"名称": [n for n, _ in river_rows], "来源": SOURCE},
                                  geometry=_round(np.array([g for _, g in river_rows], dtype=object), dec), crs=crs)

        facilities = gpd.GeoDataFrame({"名称": [n for _, n, _ in self.facilities], "类型": [k for _, _, k in self.facilities],
                                       "来源": SOURCE},
                                      geometry=_round(fr.to_ll(np.array([g for g, _, _ in self.facilities], dtype=object)), dec),
                                      crs=crs)

        kind_zh = {"tower": "高层", "walkup": "多层", "villa": "低层", "lowrise": "低层", "rural": "农房"}
        self.stats.update({
            "building_kinds": {kind_zh[k]: int((kinds == k).sum()) for k in ("tower", "walkup", "rural")}
            | {"低层": int(np.isin(kinds, ["villa", "lowrise"]).sum())},
            "households": int(buildings["户数"].sum()),
            "urban_communities": int(self.comm_urban.sum()),
            "villages": int((~self.comm_urban).sum()),
        })
        return District(streets=streets, communities=communities, roads=roads, rivers=rivers, compounds=compounds,
                        buildings=buildings, facilities=facilities, stats=self.stats)


def check(district: District, boundary=None) -> list[str]:
    """What is wrong with ``district`` (empty when nothing): streets tile ``boundary`` and
    communities tile their streets exactly, codes nest, every building lies in one community with
    at least one household, urban communities hold 1,000–5,000 households."""
    problems: list[str] = []
    boundary = load_boundary() if boundary is None else boundary
    streets, comms, blds = district.streets, district.communities, district.buildings
    for name, frame in (("streets", streets), ("communities", comms)):
        geoms = np.asarray(frame.geometry.values)
        if not shapely.coverage_is_valid(geoms):
            problems.append(f"{name}: not a valid coverage")
        rel = abs(shapely.area(shapely.coverage_union_all(geoms)) / boundary.area - 1.0)
        if rel > 1e-9:
            problems.append(f"{name}: union differs from the district by {rel:.2e} of its area")
    code_of = dict(zip(streets["街道名称"], streets["街道代码"]))
    bad = [c for c, s in zip(comms["社区代码"], comms["街道名称"]) if not c.startswith(code_of.get(s, "?")) or len(c) != 12]
    if bad:
        problems.append(f"community codes not under their street: {bad[:5]}")
    geom_of = dict(zip(streets["街道名称"], streets.geometry.values))
    outside = [c for c, s, g in zip(comms["社区代码"], comms["街道名称"], comms.geometry.values)
               if shapely.area(shapely.difference(g, geom_of[s])) > 1e-12]
    if outside:
        problems.append(f"communities outside their street: {outside[:5]}")
    tree = shapely.STRtree(np.asarray(comms.geometry.values))
    bi, ci = tree.query(np.asarray(blds.geometry.values), predicate="intersects")
    hits = np.bincount(bi, minlength=len(blds))
    if (hits != 1).any():
        problems.append(f"{int((hits != 1).sum())} buildings not in exactly one community")
    bi, ci = tree.query(np.asarray(blds.geometry.values), predicate="within")
    if len(np.unique(bi)) != len(blds):
        problems.append("buildings not within a community")
    if (blds["户数"] < 1).any():
        problems.append("buildings without households")
    totals = pd.Series(blds["户数"].to_numpy()[bi]).groupby(comms["社区名称"].to_numpy()[ci]).sum()
    urban = totals[totals.index.str.endswith("社区")]
    off = urban[(urban < 1000) | (urban > 5000)]
    if len(off) or urban.size != comms["社区名称"].str.endswith("社区").sum():
        problems.append(f"urban communities outside 1,000–5,000 households: {off.to_dict()}")
    return problems


def _substring(line, end: float):
    """``line`` from its start to distance ``end`` along it."""
    from shapely.ops import substring
    return substring(line, 0.0, end)


def _cn_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    if n < 20:
        return "十" + (digits[n % 10] if n % 10 else "")
    return digits[n // 10] + "十" + (digits[n % 10] if n % 10 else "")


__all__ = ["Config", "District", "GENERATOR_VERSION", "SOURCE", "STREETS", "check", "generate", "load_boundary"]


# -- the files, as a district office hands them over ---------------------------------------------------
SHP_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")
# fixed dates in the .dbf headers and the GeoPackages' metadata: the same seed gives the same bytes
FILE_DATE = "2025-01-01"

# file name, layer, format, encoding, .cpg written, coordinates as stored
FILES = (
    ("社区.shp", "communities", "ESRI Shapefile", "GBK", True, "EPSG:4490"),
    ("街道.gpkg", "streets", "GPKG", "UTF-8", None, "EPSG:4490"),
    ("道路.shp", "roads", "ESRI Shapefile", "GBK", False, "EPSG:4490"),
    ("楼栋.shp", "buildings", "ESRI Shapefile", "GBK", False, "EPSG:4490"),
    ("小区.shp", "compounds", "ESRI Shapefile", "GBK", True, "GCJ-02 (.prj says EPSG:4490)"),
    ("公共设施.gpkg", "facilities", "GPKG", "UTF-8", None, "EPSG:4490"),
    ("河流.gpkg", "rivers", "GPKG", "UTF-8", None, "EPSG:4490"),
)

def _write_shapefile(frame, path: Path, *, cpg: bool) -> None:
    frame.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="GBK",
                  layer_options={"RESIZE": "YES", "DBF_DATE_LAST_UPDATE": FILE_DATE})
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)


def _clear(out: Path) -> None:
    for name, *_ in FILES:
        path = out / name
        for suffix in (SHP_PARTS if path.suffix == ".shp" else (path.suffix,)):
            path.with_suffix(suffix).unlink(missing_ok=True)


def write_files(district: District, out: Path, *, decimals: int = 7) -> dict[str, gpd.GeoDataFrame]:
    """Write the district's layers to ``out`` as :data:`FILES` says (GBK shapefiles, some without
    a .cpg; GeoPackages; the compounds shifted into GCJ-02 under a CGCS2000 label); returns the
    frames as written, by layer. Same district, same bytes (the dates in the files are fixed)."""
    import pyogrio

    from gridmap.geo.crs import wgs84_to_gcj02_geoms

    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": f"{FILE_DATE}T00:00:00.000Z"})
    layers = district.layers()
    compounds = layers["compounds"].copy()
    gcj = wgs84_to_gcj02_geoms(np.asarray(compounds.geometry.values))
    compounds["geometry"] = shapely.transform(gcj, lambda c: np.round(c, decimals))
    frames = dict(layers, compounds=compounds.set_crs(4490, allow_override=True))
    for name, layer, driver, _encoding, cpg, _crs in FILES:
        path = out / name
        if driver == "GPKG":
            frames[layer].to_file(path, driver="GPKG", engine="pyogrio", layer=path.stem,
                                  dataset_options=GPKG_DATASET_OPTIONS)
        else:
            _write_shapefile(frames[layer], path, cpg=bool(cpg))
    return frames

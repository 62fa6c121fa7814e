"""gridmap: plan and run community grids (网格化服务管理).

The notebook API lives here: small, documented functions that return GeoDataFrames.
Import cost is kept low: heavy modules are imported by the functions that need them.

Example
-------
>>> import gridmap as gm
>>> gm.__version__  # doctest: +ELLIPSIS
'...'
"""

from __future__ import annotations

from gridmap.version import __version__

__all__ = ["__version__", "profile", "read_layer", "to_wgs84_from_gcj02", "estimate_households", "build_units", "partition",
           "partition_layers", "microgrids",
           "merge_layers", "household_coverage", "export", "connect", "import_territory", "territories", "units", "communities", "layer", "plan", "stations",
           "incidents", "station_coverage", "staff", "Plan"]

# The database half of the notebook API lives in gridmap.notebook; it is loaded on first use.
_NOTEBOOK = ("connect", "import_territory", "territories", "units", "communities", "layer", "plan", "stations", "incidents", "station_coverage", "staff", "Plan")


def __getattr__(name: str):
    if name in _NOTEBOOK:
        from gridmap import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'gridmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NOTEBOOK))


def export(data, path, *, format=None, crs="4490", encoding="utf-8", layers=("grids",)):
    """Write a plan, a GeoDataFrame or a ``{layer name: frame}`` dict for a government GIS system.

    ``format``: shp (one zip with .shp/.shx/.dbf/.prj/.cpg and a data dictionary), gpkg, geojson
    (RFC 7946), kml or csv (WKT); default from the file suffix. ``crs``: 4490 (CGCS2000), 4326,
    gk3 (3-degree Gauss-Krüger zone of the data, zone prefix), gk3-cm (without), gcj02, or an EPSG
    code. ``encoding``: utf-8 or gbk (shp, csv). Codes stay text; areas are recomputed in m² in a
    projected CRS. ``layers`` applies to a plan: grids and/or units.

    Example
    -------
    >>> gm.export(gm.plan("990100"), "reykjavik.zip", format="shp", crs="gk3")  # doctest: +SKIP
    <ExportResult shp reykjavik.zip — grids: 430; CGCS2000 / 3-degree Gauss-Kruger zone 113 21W ...; utf-8>
    """
    from gridmap.geo.export import export as _export

    if hasattr(data, "export") and hasattr(data, "grids"):
        return data.export(path, format=format, crs=crs, encoding=encoding, layers=tuple(layers))
    return _export(data, path, format=format, crs=crs, encoding=encoding)


def household_coverage(roads, buildings, stations, areas=None, **kwargs):
    """Share of households within a walk (default 15 minutes at 75 m/min) of each station type,
    per area, on plain GeoDataFrames. See :func:`gridmap.geo.walking.household_coverage`.

    Example
    -------
    >>> gm.household_coverage(roads, buildings, stations, grids, minutes=10)  # doctest: +SKIP
    """
    from gridmap.geo.walking import household_coverage as _coverage

    return _coverage(roads, buildings, stations, areas, **kwargs)


def profile(spec=None):
    """A city's rules (:class:`gridmap.geo.profile.Profile`): a preset by name (``"default"``,
    ``"db11-2157"``, ``"cjt-349"``) or a TOML file; None is the default. Pass it as ``profile=`` to
    :func:`build_units`, :func:`partition` and :func:`merge_layers`; ``gm.plan(...).profile`` is the
    one a stored plan was made with.

    Example
    -------
    >>> gm.profile("cjt-349").band
    (300, 500)
    >>> gm.profile().micro_band
    (50, 80)
    """
    return _as_profile(spec)


def _as_profile(spec):
    from gridmap.geo.profile import Profile, load

    return spec if isinstance(spec, Profile) else load(spec)


def merge_layers(layers, units, communities, *, profile=None, min_households=None, max_households=None, **kwargs):
    """Merge departmental grid layers into one plan (多网合一) with conflicts, crosswalk and duties,
    by ``profile``'s rules (see :func:`profile`). See :func:`gridmap.geo.merge.merge_layers`.

    Example
    -------
    >>> result = gm.merge_layers({"综治": zz, "城管": cg}, units, communities)  # doctest: +SKIP
    >>> result.conflicts.explore(column="kind")  # doctest: +SKIP
    """
    from gridmap.geo.merge import merge_layers as _merge

    rules = _as_profile(profile).with_band(min_households, max_households)
    kwargs = {"rules": rules.merge, "partition_rules": rules.partition, "road_rules": rules.roads, **kwargs}
    return _merge(layers, units, communities, **kwargs)


def build_units(communities, roads, buildings, *, profile=None, client=None, **kwargs):
    """Tile communities with units (compounds, blocks, dedicated sites) by ``profile``'s rules;
    returns a GeoDataFrame. See :func:`gridmap.geo.units.build_units` for every option.

    ``client``: a ``dask.distributed.Client``; groups of neighbouring communities are then built
    on its cluster's workers and joined (:mod:`gridmap.geo.unit_pieces`: the same units, except
    vertices snapped a hair apart at the seams and a building straddling a seam counted whole on
    its point's side). Without it, a territory of more than 100,000 buildings (a city) is built
    the same way in pieces one after the other, so memory follows the piece, not the city.

    Example
    -------
    >>> units = gm.build_units(communities, roads, buildings, compounds=compounds, sites=sites)  # doctest: +SKIP
    >>> units = gm.build_units(communities, roads, buildings, client=dask.distributed.Client("tcp://HOST:8786"))  # doctest: +SKIP
    """
    from gridmap.geo.unit_pieces import build_units_in_pieces

    rules = _as_profile(profile)
    kwargs = {"rules": rules.units, "road_rules": rules.roads, **kwargs}
    # without a client, serially: whole, or a city in pieces of bounded size (unit_pieces.MAX_PIECE_BUILDINGS)
    return build_units_in_pieces(communities, roads, buildings, runner=_runner(client), **kwargs)


def partition(units, *, profile=None, min_households=None, max_households=None, micro=False, buildings=None, seed=0,
              client=None, entrances=None, **kwargs):
    """Assign units to grids in the household band of ``profile`` (default 300–500), ``min_households``/
    ``max_households`` overriding it; returns a result with ``.units``, ``.grids`` and ``.report``.
    See :func:`gridmap.geo.partition.partition`.

    One level down: ``micro=True``, ``buildings=`` given, or units of a single grid (a plan's units
    with one ``grid_code``) divide each grid into micro-grids (:func:`microgrids`) in the profile's
    micro band (50–80) unless a band is given, from ``buildings`` (the atoms; big ones cut by their
    单元) or, without them, from the units themselves; codes are the grid's code + 3 digits.
    ``entrances``: with ``buildings``, a layer of their stairwell doors (:func:`microgrids`).

    ``client``: a ``dask.distributed.Client``; the pieces are then cut on its cluster's workers,
    with the same answer (:mod:`gridmap.distributed`).

    Example
    -------
    >>> result = gm.partition(units, min_households=300, max_households=500)  # doctest: +SKIP
    >>> result = gm.partition(units, client=dask.distributed.Client("tcp://HOST:8786"))  # doctest: +SKIP
    >>> result.grids.explore(column="households")  # doctest: +SKIP
    >>> micro = gm.partition(units_of_one_grid, micro=True, buildings=gm.layer("511802", "buildings"))  # doctest: +SKIP
    """
    from gridmap.geo.partition import partition as _partition
    from gridmap.geo.partition import with_band

    chosen = _as_profile(profile)
    one_grid = "grid_code" in getattr(units, "columns", ()) and units["grid_code"].nunique() == 1
    if buildings is not None or one_grid or (micro and "grid_code" in getattr(units, "columns", ())):
        lo = chosen.micro_band[0] if min_households is None else min_households
        hi = chosen.micro_band[1] if max_households is None else max_households
        if "grid_code" not in units:
            raise ValueError("micro-grids divide grids: give units with a grid_code column (a plan's units, "
                             "e.g. gm.plan(code).units), or grids to gm.microgrids")
        grids = units[["grid_code", "geometry"]].dissolve(by="grid_code", as_index=False)
        if buildings is not None:
            return microgrids(grids, buildings, profile=chosen, min_households=lo, max_households=hi, seed=seed,
                              client=client, entrances=entrances)
        result = microgrids(grids, units.rename(columns={"unit_id": "building_name"}).drop(columns="entrances",
                            errors="ignore"), profile=chosen, min_households=lo, max_households=hi, seed=seed,
                            client=client)
        return _units_as_atoms(result, hi)
    rules = with_band(chosen.micro_rules() if micro else chosen.partition, min_households, max_households)
    if client is not None:
        kwargs["runner"] = _runner(client)
    return _partition(units, seed=seed, rules=rules, road_rules=kwargs.pop("road_rules", chosen.roads), **kwargs)


def _units_as_atoms(result, hi: int):
    """Micro-grids made of whole units (no ``buildings`` given): a unit above the band is not a
    building without a 单元 count, as the division's flag would say, but a group of buildings the
    call was not given. Its reason says so, with the way out, wherever the result states it (the
    flags, the micro-grids, the report), and a warning (English and Chinese) says it once."""
    import warnings

    flags = result.flags
    over = (flags["flag"] == "building_above_max").to_numpy() if len(flags) else []
    if not len(flags) or not over.any():
        return result
    held = result.microgrids.set_index("microgrid_code")["households"]
    reasons = {}
    for code in flags.loc[over, "microgrid_code"]:
        reasons[code] = (
            f"micro-grid {code} is one unit of {int(held[code])} households (> {hi}): micro-grids were made of whole "
            "units; give buildings= (e.g. gm.layer(territory, \"buildings\")) to divide it by its buildings",
            f"微网格 {code} 是一个 {int(held[code])} 户的单元（超过 {hi} 户）：未给出楼栋，微网格由整个单元组成；"
            "请给出 buildings=（如 gm.layer(辖区代码, \"buildings\")）按楼栋划分")
    for frame in (flags, result.microgrids):
        for i in frame.index[frame["microgrid_code"].isin(list(reasons))]:
            frame.at[i, "reason"], frame.at[i, "reason_zh"] = reasons[frame.at[i, "microgrid_code"]]
    for flag in result.report.get("flags", []):
        if flag.get("microgrid_code") in reasons:
            flag["reason"], flag["reason_zh"] = reasons[flag["microgrid_code"]]
    warnings.warn(f"{len(reasons)} micro-grids are single units above {hi} households: give buildings= to divide "
                  f"them by their buildings / {len(reasons)} 个微网格是超过 {hi} 户的单个单元：请给出 buildings= 按楼栋划分",
                  UserWarning, stacklevel=3)
    return result


def partition_layers(communities, roads, buildings, *, profile=None, seed=0, client=None, **layers):
    """A territory's grids from its own layers, as ``gridmap partition`` makes them from the stored
    ones: units built (:func:`build_units`; ``layers``: ``compounds``, ``sites``, ``waterways``,
    ``railways``, ``entrances``), partitioned (:func:`partition`), then every community where a grid missed the
    band while its units held several buildings built again one unit per building, and
    partitioned again (:func:`gridmap.geo.grain.partition_at_building_grain`, at most three
    rounds), so that a miss left carries a proof that holds for the territory, not just for the
    units as first built. Returns the partition's result; ``.units["atomic"]`` marks the
    communities built at building grain.

    On the repository's 雨城区 files (117 communities, 7,924 buildings) :func:`partition` of the
    first units put 345 of 423 comprehensive grids in the band, 31 misses "not proven at building
    grain"; this puts 370 of 421 there, every miss proven.

    Example
    -------
    >>> result = gm.partition_layers(communities, roads, buildings, compounds=compounds, sites=sites,
    ...                              profile="规则.toml")  # doctest: +SKIP
    >>> result.report["summary"]["in_band_share"]  # doctest: +SKIP
    """
    from gridmap.geo import stairwells
    from gridmap.geo.grain import partition_at_building_grain
    from gridmap.geo.partition import assign_units

    chosen = _as_profile(profile)
    refined: set[str] = set()
    if layers.get("entrances") is not None:  # the doors read once, not at every round
        buildings, _read = stairwells.attach(buildings, layers.pop("entrances"))

    def build(codes: frozenset[str] = frozenset()):
        refined.update(codes)  # a community once at building grain stays there
        return build_units(communities, roads, buildings, profile=chosen, client=client,
                           atomize=frozenset(refined), **layers)

    def run(units, memo):
        return assign_units(units, rules=chosen.partition, road_rules=chosen.roads, seed=seed, roads=roads,
                            runner=_runner(client), memo=memo)

    lo, hi = chosen.band
    return partition_at_building_grain(build(), run, build, lo, hi).assembled()


def _runner(client):
    """Where the pieces run: serially here, or on the Dask cluster of ``client``."""
    from gridmap.distributed import DaskRunner
    from gridmap.geo.tasks import SERIAL

    return SERIAL if client is None else DaskRunner(client)


def microgrids(grids, buildings, *, profile=None, min_households=None, max_households=None, seed=0, client=None,
               entrances=None):
    """Divide ``grids`` (a plan's grids: ``grid_code``, geometry) into micro-grids (微网格) of the
    profile's micro band (50–80) made of ``buildings`` (``households``, optional ``entrances``
    单元数: big buildings are cut by their 单元), coded below each grid (grid code + 3 digits).
    Returns ``.microgrids`` (also ``.grids``), ``.buildings``, ``.report`` and ``.flags``; see
    :func:`gridmap.geo.microgrids.divide`. Stored micro-grids of a plan: ``gm.plan(code).microgrids``.
    ``client``: a ``dask.distributed.Client`` whose workers group the grids' buildings (same answer).
    ``entrances``: a layer of stairwell doors (OpenStreetMap ``entrance=staircase`` nodes, 单元门
    points) giving buildings without a 单元数 their 单元 and placing the cuts between them
    (:mod:`gridmap.geo.stairwells`).

    Example
    -------
    >>> result = gm.microgrids(plan.grids, gm.layer("511802", "buildings"))  # doctest: +SKIP
    >>> result = gm.microgrids(plan.grids, buildings, entrances=gm.read_layer("单元门.shp"))  # doctest: +SKIP
    >>> result.microgrids.explore(column="households")  # doctest: +SKIP
    """
    from gridmap.geo.microgrids import divide

    chosen = _as_profile(profile)
    lo = chosen.micro_band[0] if min_households is None else min_households
    hi = chosen.micro_band[1] if max_households is None else max_households
    return divide(grids, buildings, band=(lo, hi), code_scheme=chosen.partition.code_scheme,
                  rules=chosen.micro_rules(), seed=seed, runner=_runner(client), entrances=entrances)


def read_layer(path, **kwargs):
    """Read a GIS file into a GeoDataFrame in EPSG:4490, repaired and checked.

    Thin wrapper over :func:`gridmap.geo.io.read_vector`; see it for the options
    (``crs=`` for files without one or in ``"gcj02"``, ``layer=``, ``encoding=``).

    Example
    -------
    >>> gdf = gm.read_layer("grids.shp", encoding="gbk")  # doctest: +SKIP
    """
    from gridmap.geo.io import read_vector

    return read_vector(path, **kwargs).frame


def to_wgs84_from_gcj02(gdf):
    """Return ``gdf`` with its GCJ-02 (Amap/Tencent) coordinates converted to WGS84/CGCS2000.

    Example
    -------
    >>> fixed = gm.to_wgs84_from_gcj02(amap_layer)  # doctest: +SKIP
    """
    from gridmap.geo.crs import gcj02_to_wgs84_frame

    return gcj02_to_wgs84_frame(gdf)


def estimate_households(buildings, rule=None):
    """Estimate households per building by the documented rule (see gridmap.geo.households).

    Example
    -------
    >>> buildings["households"] = gm.estimate_households(buildings)  # doctest: +SKIP
    """
    from gridmap.geo.households import estimate_households as _estimate

    return _estimate(buildings, rule)

"""CQL2 filters (OGC API - Features Part 3) as parameterised SQL over a collection's queryables.

The filter text or JSON is parsed by ``pygeofilter`` (its CQL2 parsers); this module turns the
parsed tree into a SQL condition in which every value is a bound parameter and every property
is one of the collection's queryables (their SQL expressions come from the collection table,
never from the request). pygeofilter's own SQL backend is not used: it pastes string values into
the SQL between quotes (a value holding a quote breaks out of it) and quotes property names as
column identifiers, which the collections' expressions (``c.code``, casts, joins) are not.

Supported: ``AND``/``OR``/``NOT``, comparisons, ``BETWEEN``, ``LIKE`` (CQL2's ``%`` and ``_``),
``IN``, ``IS NULL``, arithmetic, and the spatial predicates (``S_INTERSECTS``, ``S_WITHIN`` ...)
against geometry literals in CRS84 (taken as EPSG:4490, as the served coordinates are).
Anything else is refused with the reason. The temporal functions (``T_AFTER``, ``T_DURING`` ...,
CQL2's optional Temporal Functions class) are refused, not claimed: pygeofilter 0.4 reads their
text form only in a non-standard infix shape, its ``INTERVAL`` takes neither dates, ``'..'`` nor
properties, and its JSON parser reads ``t_intersects`` as ``t_overlaps``
(geopython/pygeofilter#116, #120; #155 is the open fix). Comparisons of instants
(``reported_at >= TIMESTAMP('2026-01-01T00:00:00Z')``) are Basic CQL2 and work.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pygeofilter import ast, values
from pygeofilter.backends.evaluator import Evaluator, handle

from gridmap.errors import Invalid

COMPARISONS = {ast.ComparisonOp.EQ: "=", ast.ComparisonOp.NE: "<>", ast.ComparisonOp.LT: "<",
               ast.ComparisonOp.LE: "<=", ast.ComparisonOp.GT: ">", ast.ComparisonOp.GE: ">="}
ARITHMETIC = {ast.ArithmeticOp.ADD: "+", ast.ArithmeticOp.SUB: "-", ast.ArithmeticOp.MUL: "*",
              ast.ArithmeticOp.DIV: "/"}
SPATIAL = {ast.SpatialComparisonOp.INTERSECTS: "ST_Intersects", ast.SpatialComparisonOp.DISJOINT: "ST_Disjoint",
           ast.SpatialComparisonOp.CONTAINS: "ST_Contains", ast.SpatialComparisonOp.WITHIN: "ST_Within",
           ast.SpatialComparisonOp.TOUCHES: "ST_Touches", ast.SpatialComparisonOp.CROSSES: "ST_Crosses",
           ast.SpatialComparisonOp.OVERLAPS: "ST_Overlaps", ast.SpatialComparisonOp.EQUALS: "ST_Equals"}
GEOMETRY_PROPERTY = "geometry"
TEMPORAL_FUNCTION = re.compile(r"\bT_[A-Z]+\b", re.IGNORECASE)


def temporal_refused() -> Invalid:
    """Why a temporal function is refused, and what to write instead (see the module docstring)."""
    return Invalid("filter: the temporal functions (T_AFTER, T_DURING ...) are not supported; compare instants "
                   "instead, e.g. reported_at >= TIMESTAMP('2026-01-01T00:00:00Z') AND "
                   "reported_at < TIMESTAMP('2026-02-01T00:00:00Z'), or use the datetime parameter",
                   "筛选条件：不支持时间函数（T_AFTER、T_DURING 等）；请比较时刻，例如 "
                   "reported_at >= TIMESTAMP('2026-01-01T00:00:00Z') AND reported_at < "
                   "TIMESTAMP('2026-02-01T00:00:00Z')，或使用 datetime 参数")


def uses_temporal_functions(text: str | None = None, tree: object = None) -> bool:
    """Whether CQL2 text (outside its quoted strings) or a CQL2-JSON tree names a temporal function."""
    if text is not None:
        unquoted = re.sub(r"'(?:[^']|'')*'", "''", text)  # text values ...
        return bool(TEMPORAL_FUNCTION.search(re.sub(r'"[^"]*"', '""', unquoted)))  # ... and quoted property names
    if isinstance(tree, dict):
        op = tree.get("op")
        return (isinstance(op, str) and op.lower().startswith("t_")) or any(
            uses_temporal_functions(tree=v) for v in tree.values())
    if isinstance(tree, list):
        return any(uses_temporal_functions(tree=v) for v in tree)
    return False


class _ToSQL(Evaluator):
    """Each node to a SQL fragment; values go into ``params`` as ``:cql<N>``."""

    def __init__(self, queryables: dict[str, str], geometry_expr: str):
        self.queryables = queryables
        self.geometry_expr = geometry_expr
        self.params: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"cql{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    @handle(ast.Not)
    def not_(self, node, sub):
        return f"(NOT {sub})"

    @handle(ast.And, ast.Or)
    def combination(self, node, lhs, rhs):
        return f"({lhs} {'AND' if isinstance(node, ast.And) else 'OR'} {rhs})"

    @handle(ast.Comparison, subclasses=True)
    def comparison(self, node, lhs, rhs):
        return f"({lhs} {COMPARISONS[node.op]} {rhs})"

    @handle(ast.Between)
    def between(self, node, lhs, low, high):
        return f"({lhs} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"

    @handle(ast.Like)
    def like(self, node, lhs):
        if not isinstance(node.pattern, str):
            raise Invalid("filter: a LIKE pattern is a text value", "筛选条件：LIKE 的模式须为文本")
        operator = "ILIKE" if node.nocase else "LIKE"
        return f"({lhs}::text {'NOT ' if node.not_ else ''}{operator} {self._bind(node.pattern)} ESCAPE '\\')"

    @handle(ast.In)
    def in_(self, node, lhs, *options):
        return f"({lhs} {'NOT ' if node.not_ else ''}IN ({', '.join(options)}))"

    @handle(ast.IsNull)
    def null(self, node, lhs):
        return f"({lhs} IS {'NOT ' if node.not_ else ''}NULL)"

    @handle(ast.Arithmetic, subclasses=True)
    def arithmetic(self, node, lhs, rhs):  # in double precision: CQL2's "/" is not integer division
        return f"(({lhs})::float8 {ARITHMETIC[node.op]} ({rhs})::float8)"

    @handle(ast.SpatialComparisonPredicate, subclasses=True)
    def spatial(self, node, lhs, rhs):
        return f"{SPATIAL[node.op]}({lhs}, {rhs})"

    @handle(ast.TemporalPredicate, subclasses=True)
    def temporal(self, node, lhs, rhs):
        raise temporal_refused()

    @handle(ast.BBox)
    def bbox(self, node, lhs):
        box = ", ".join(self._bind(float(v)) for v in (node.minx, node.miny, node.maxx, node.maxy))
        return f"ST_Intersects({lhs}, ST_MakeEnvelope({box}, 4490))"

    @handle(ast.Attribute)
    def attribute(self, node):
        if node.name == GEOMETRY_PROPERTY:
            return self.geometry_expr
        if node.name not in self.queryables:
            raise Invalid(f"filter: unknown property {node.name!r}; the queryables are "
                          f"{', '.join(sorted(self.queryables))}",
                          f"筛选条件：没有属性 {node.name!r}；可用于筛选的属性为 {', '.join(sorted(self.queryables))}")
        return self.queryables[node.name]

    @handle(ast.Function)
    def function(self, node, *arguments):
        if node.name.lower() == "bbox" and len(arguments) in (4, 6):  # CQL2's BBOX(x1, y1, x2, y2) literal
            x0, y0, x1, y1 = (arguments[0], arguments[1], arguments[2], arguments[3]) if len(arguments) == 4 else \
                (arguments[0], arguments[1], arguments[3], arguments[4])
            return f"ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}, 4490)"
        raise Invalid(f"filter: function {node.name!r} is not supported", f"筛选条件：不支持函数 {node.name!r}")

    @handle(values.Geometry)
    def geometry(self, node):
        import json

        return f"ST_SetSRID(ST_GeomFromGeoJSON({self._bind(json.dumps(node.geometry))}), 4490)"

    @handle(values.Envelope)
    def envelope(self, node):
        box = ", ".join(self._bind(float(v)) for v in (node.x1, node.y1, node.x2, node.y2))
        return f"ST_MakeEnvelope({box}, 4490)"

    @handle(str, int, float, bool, datetime, date)
    def literal(self, node):
        return self._bind(node)

    def adopt(self, node, *sub_args):
        kind = type(node).__name__
        raise Invalid(f"filter: {kind} is not supported; use comparisons, LIKE, IN, BETWEEN, IS NULL, AND/OR/NOT, "
                      "arithmetic and spatial predicates",
                      f"筛选条件：不支持 {kind}；可用比较、LIKE、IN、BETWEEN、IS NULL、AND/OR/NOT、算术和空间谓词")


def where(tree: ast.Node, queryables: dict[str, str], geometry_expr: str) -> tuple[str, dict[str, Any]]:
    """A parsed CQL2 filter as a SQL condition and its bound parameters (see the module docstring)."""
    evaluator = _ToSQL(queryables, geometry_expr)
    try:
        return evaluator.evaluate(tree), evaluator.params
    except RecursionError:
        raise Invalid("filter: nested too deeply; use IN (...) for long lists of values",
                      "筛选条件嵌套过深；多个取值请用 IN (...)") from None


__all__ = ["where", "GEOMETRY_PROPERTY", "temporal_refused", "uses_temporal_functions"]

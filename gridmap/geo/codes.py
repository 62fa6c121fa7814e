"""Grid codes: a configurable scheme with the published layouts as presets (docs/domain.md, "Codes").

* ``BEIJING_15`` (DB11/T 2157-2023): 15 digits = the 12-digit community code (6 county + 3 street
  + 3 community) + a 3-digit sequence.
* ``CJT_20`` (CJ/T 349-2010): 20 digits = 6-digit object class + the 12-digit community code +
  a 2-digit sequence, ``00`` when the community is not subdivided.

A micro-grid (微网格) is coded below its grid: the grid's code + ``micro_digits`` digits (3 by
default: 15 + 3 = 18 digits in the Beijing layout), numbered in the same reading order.

Sequence order: west→east, then north→south, read like a page: grids are put in rows (bands one
typical grid high, from the north) and numbered west to east along each row.
Codes are strings; leading zeros are part of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CodeScheme:
    """``prefix`` + community code + a ``sequence_digits``-digit sequence starting at ``start``."""

    name: str
    sequence_digits: int = 3
    prefix: str = ""
    start: int = 1
    single_grid_sequence: int | None = None  # e.g. 0 for CJ/T 349's "00 = not subdivided"
    community_digits: int = 12
    micro_digits: int = 3  # a micro-grid's code: its grid's code + this many digits (15 + 3 = 18)

    def micro_codes(self, grid_code: str, x, y) -> list[str]:
        """Codes for the micro-grids of one grid given their (metric) centroids: the grid's code
        + a ``micro_digits``-digit sequence from 1, in reading order (north→south, west→east).

        >>> BEIJING_15.micro_codes("511802001001002", [0.0, 50.0], [0.0, 0.0])
        ['511802001001002001', '511802001001002002']
        """
        x, y = np.asarray(x, float), np.asarray(y, float)
        capacity = 10 ** self.micro_digits - 1
        if len(x) > capacity:
            raise ValueError(f"grid {grid_code} has {len(x)} micro-grids; {self.micro_digits} digits number at most "
                             f"{capacity}")
        codes = [""] * len(x)
        for rank, position in enumerate(reading_order(x, y)):
            codes[position] = f"{grid_code}{rank + 1:0{self.micro_digits}d}"
        return codes

    def assign(self, community_codes: pd.Series, x: pd.Series, y: pd.Series) -> list[str]:
        """Codes for grids given their community and (metric) centroid coordinates."""
        frame = pd.DataFrame({"c": community_codes.astype(str).to_numpy(), "x": np.asarray(x, float),
                              "y": np.asarray(y, float)})
        codes = [""] * len(frame)
        for community, group in frame.groupby("c", sort=False):
            if len(community) != self.community_digits or not community.isdigit():
                raise ValueError(f"community code {community!r} is not {self.community_digits} digits")
            order = reading_order(group["x"].to_numpy(), group["y"].to_numpy())
            capacity = 10 ** self.sequence_digits - self.start
            if len(group) > capacity:
                raise ValueError(f"community {community} has {len(group)} grids; the {self.name} scheme "
                                 f"numbers at most {capacity}")
            for rank, position in enumerate(order):
                seq = self.start + rank
                if len(group) == 1 and self.single_grid_sequence is not None:
                    seq = self.single_grid_sequence
                codes[group.index[position]] = f"{self.prefix}{community}{seq:0{self.sequence_digits}d}"
        return codes


def reading_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Positions sorted north→south by rows, west→east within a row (rows one typical spacing high)."""
    n = len(x)
    if n <= 1:
        return np.arange(n)
    span = max(x.max() - x.min(), y.max() - y.min(), 1e-9)
    row_height = span / max(np.sqrt(n), 1.0)
    row = np.floor((y.max() - y) / row_height).astype(np.int64)
    return np.lexsort((x, row))


BEIJING_15 = CodeScheme(name="beijing-15", sequence_digits=3)
CJT_20 = CodeScheme(name="cjt-20", sequence_digits=2, prefix="000000", single_grid_sequence=0)
SCHEMES = {s.name: s for s in (BEIJING_15, CJT_20)}

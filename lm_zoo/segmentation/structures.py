"""The structures of one segmentation as regions, with the field-of-view check the rules share."""
from __future__ import annotations

from lm_zoo.segmentation.errors import Skip
from lm_zoo.segmentation.grid import ALL_FACES, Grid, Region

__all__ = ["Structures"]


class Structures:
    """{structure name: zyx indices} of one segmentation on its grid, turned into regions on demand.

    ``bodies`` caches the vertebral bodies (level -> region, None when none was found): several
    landmarks use the same body.
    """

    def __init__(self, grid: Grid, structures: dict, source: str):
        self.grid, self.raw, self.source = grid, structures, source
        self.regions: dict[str, Region] = {}
        self.bodies: dict[str, Region | None] = {}

    def has(self, name) -> bool:
        return name in self.raw

    def region(self, name) -> Region:
        if name not in self.raw:
            raise KeyError(name)
        if name not in self.regions:
            self.regions[name] = Region(self.grid, self.raw[name], name)
        return self.regions[name]

    def need(self, name, faces: str = ALL_FACES, region: Region | None = None) -> Region:
        """The structure's region, or Skip when it is absent or cut on one of ``faces``."""
        if region is None:
            if name not in self.raw:
                raise KeyError(name)
            region = self.region(name)
        cut = self.grid.touched(region.zyx, faces)
        if cut:
            raise Skip(f"{name} is cut by the field of view (touches the {'/'.join(cut)} border)")
        return region

"""The Trifeatures renderer (Hermann & Lampinen, "What shapes feature representations?
Exploring datasets, architectures, and training", NeurIPS 2020): an object of one of 10
shapes, 10 colours and 10 textures on a grey background, at a random position and rotation.

Our own NumPy code (nothing is downloaded), vectorised over a batch of images: each
sub-pixel is turned and moved into the object's frame; shapes are inside-tests (half-planes,
rectangles, a circle), textures periodic functions of the object-frame coordinates with a
random phase per image (``noise``: cells from an integer hash), drawn in the object's colour
with marks at 35% of it (55% of the way to white for the dark blue, purple and ocean).
Sub-pixels: 4x4 per pixel below 64 px, 2x2 from 64 px, averaged (anti-aliasing). The texture
period is 10 px at 224 px (the paper's scale) but at least 5 px, so textures stay
recognisable at 32 px. The object always lies wholly inside the image. The data set built on
it: :mod:`mmfactor.data.trifeatures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

SHAPES = tuple("triangle square plus circle tee rhombus pentagon star fivesquare trapezoid".split())
#: Colour name -> RGB in [0, 1] (Hermann & Lampinen's values).
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "pink": (1.0, 0.4, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "purple": (0.3, 0.0, 0.5),
    "ocean": (0.1, 0.4, 0.5),
    "orange": (1.0, 0.6, 0.0),
    "white": (1.0, 1.0, 1.0),
}
TEXTURES = tuple("solid stripes grid hexgrid dots noise triangles zigzags rain pluses".split())
BACKGROUND = 0.5
RENDERER_VERSION = 1  # bump on any change to the pixels: it is part of the cache key
BOX = 128 / 224  # side of the object's box, as a fraction of the image side
MAX_ANGLE = 45.0  # degrees, either way
RADIUS = 1.17  # every shape lies within this radius (in half-box units) of its centre
PERIOD = 10 / 224  # texture period, as a fraction of the image side (the paper's scale) ...
MIN_PERIOD_PX = 5.0  # ... but never below 5 pixels
N_TRIPLES = len(SHAPES) * len(COLOURS) * len(TEXTURES)

_STREAMS = {"geometry": 1, "mapping": 2, "split": 3, "pairs": 4}
_CHUNK = 1 << 21  # sub-pixels per rendering step (a few MB per float32 array)


def stream_rng(seed: int, stream: str, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *key])


# ------------------------------------------------------------------------------------------
# Coordinates


class _Frame:
    """Coordinates ``u`` (right) and ``v`` (up) of a block of images' sub-pixels in an
    object's frame: ``u = ux + uy`` and ``v = vx + vy`` with ``ux, vx`` ``(n, 1, W)`` and
    ``uy, vy`` ``(n, H, 1)``, so an affine function of ``(u, v)`` costs one full-size sum."""

    def __init__(self, ux: np.ndarray, uy: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> None:
        self.ux, self.uy, self.vx, self.vy = ux, uy, vx, vy

    def lin(self, alpha: float, beta: float, gamma: Any = 0.0) -> np.ndarray:
        """``alpha * u + beta * v + gamma`` ``(n, H, W)`` float32."""
        f = np.float32
        return (f(alpha) * self.ux + f(beta) * self.vx + gamma) + (
            f(alpha) * self.uy + f(beta) * self.vy
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(self.ux.shape, self.uy.shape)

    @property
    def u(self) -> np.ndarray:
        return self.ux + self.uy

    @property
    def v(self) -> np.ndarray:
        return self.vx + self.vy

    def scaled(self, k: float, shift_u: np.ndarray, shift_v: np.ndarray) -> _Frame:
        """The frame of ``(k u + shift_u, k v + shift_v)``, shifts ``(n, 1, 1)``."""
        f = np.float32(k)
        return _Frame(f * self.ux + shift_u, f * self.uy, f * self.vx + shift_v, f * self.vy)


_Mask = Callable[[_Frame], np.ndarray]

# ------------------------------------------------------------------------------------------
# Shapes: inside-tests in the object's frame, whose box is [-1, 1]^2


def _convex(*vertices: tuple[float, float]) -> _Mask:
    """Inside-test of a convex polygon given counter-clockwise: every edge's half-plane."""
    planes = []
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        # (x1 - x0) (v - y0) - (y1 - y0) (u - x0) >= 0
        planes.append((-(y1 - y0), x1 - x0, (y1 - y0) * x0 - (x1 - x0) * y0))

    def inside(fr: _Frame) -> np.ndarray:
        out = fr.lin(*planes[0]) >= 0
        for plane in planes[1:]:
            out &= fr.lin(*plane) >= 0
        return out

    return inside


def _boxes(*boxes: tuple[float, float, float, float]) -> _Mask:
    """Inside-test of a union of axis-aligned rectangles ``(u0, u1, v0, v1)``."""

    def inside(fr: _Frame) -> np.ndarray:
        out = np.zeros(fr.shape, dtype=bool)
        for u0, u1, v0, v1 in boxes:
            box = np.abs(fr.lin(1, 0, -(u0 + u1) / 2)) <= (u1 - u0) / 2
            box &= np.abs(fr.lin(0, 1, -(v0 + v1) / 2)) <= (v1 - v0) / 2
            out |= box
        return out

    return inside


def _regular(k: int, radius: float) -> list[tuple[float, float]]:
    """Vertices (counter-clockwise, one on top) of a regular ``k``-gon."""
    angles = [math.pi / 2 + 2 * math.pi * i / k for i in range(k)]
    return [(radius * math.cos(a), radius * math.sin(a)) for a in angles]


def _star(fr: _Frame) -> np.ndarray:
    """A five-pointed star (points at radius 1.08): inside at least 4 of the half-planes of
    its 5 lines (the inner pentagon is inside all 5, each point inside 4)."""
    reach = 1.08 * math.cos(2 * math.pi / 5)  # distance of each line from the centre
    count = np.zeros(fr.shape, dtype=np.uint8)
    for j in range(5):
        phi = math.radians(18 + 72 * j)
        count += fr.lin(math.cos(phi), math.sin(phi), -reach) <= 0
    return count >= 4


def _circle(fr: _Frame) -> np.ndarray:
    u, v = fr.u, fr.v
    return u * u + v * v <= np.float32(0.95**2)


def _square(x: float, y: float, half: float) -> tuple[float, float, float, float]:
    return (x - half, x + half, y - half, y + half)


_SHAPE_TESTS: dict[str, _Mask] = {
    "triangle": _convex((0.0, 1.0), (-0.95, -0.62), (0.95, -0.62)),
    "square": _boxes(_square(0, 0, 0.78)),
    "plus": _boxes((-1.0, 1.0, -0.3, 0.3), (-0.3, 0.3, -1.0, 1.0)),
    "circle": _circle,
    "tee": _boxes((-0.9, 0.9, 0.3, 0.75), (-0.28, 0.28, -1.0, 0.3)),
    "rhombus": _convex((0.0, 1.0), (-0.7, 0.0), (0.0, -1.0), (0.7, 0.0)),
    "pentagon": _convex(*_regular(5, 1.0)),
    "star": _star,
    "fivesquare": _boxes(
        *[_square(x, y, 0.28) for x, y in [(0, 0), (-0.55, -0.55), (0.55, -0.55)]],
        *[_square(x, y, 0.28) for x, y in [(-0.55, 0.55), (0.55, 0.55)]],
    ),
    "trapezoid": _convex((-1.0, -0.6), (1.0, -0.6), (0.5, 0.6), (-0.5, 0.6)),
}

# ------------------------------------------------------------------------------------------
# Textures: marks (True) in the texture frame (a, b in periods); key: (n, 1, 1) uint32, one
# per image (the noise texture's seed)

_Texture = Callable[[_Frame, np.ndarray], np.ndarray]
_SQRT3 = math.sqrt(3)


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def _hexgrid(fr: _Frame, key: np.ndarray) -> np.ndarray:
    """The edges of a honeycomb (pointy-top hexagons, centres 1.2 periods apart): where the
    hexagonal norm to the nearest centre exceeds 70% of the apothem. The centres form two
    rectangular lattices; the nearest of each comes from rounding."""
    c = _SQRT3 / 1.2  # periods -> units of the hexagons' circumradius
    h = None
    for off in (0.5, 0.0):
        ax = np.abs(_frac(fr.lin(c / _SQRT3, 0, off)) - 0.5) * np.float32(_SQRT3)
        ay = np.abs(_frac(fr.lin(0, c / 3, off)) - 0.5) * np.float32(3)
        norm = np.maximum(ax, 0.5 * ax + np.float32(_SQRT3 / 2) * ay)
        h = norm if h is None else np.minimum(h, norm)
    assert h is not None
    return h > np.float32(0.7 * _SQRT3 / 2)


def _dots(fr: _Frame, key: np.ndarray) -> np.ndarray:
    fa, fb = _frac(fr.u) - 0.5, _frac(fr.v) - 0.5
    return fa * fa + fb * fb < 0.3**2


def _noise(fr: _Frame, key: np.ndarray) -> np.ndarray:
    """Random cells of half a period: one bit of an integer hash of the cell and the key."""

    def cell(x: np.ndarray) -> np.ndarray:
        return (np.floor(2 * x).astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)

    h = cell(fr.u) * np.uint32(0x8DA6B343) ^ cell(fr.v) * np.uint32(0xD8163841) ^ key
    for shift, mult in ((15, 0x2C1B3C6D), (12, 0x297A2D39)):
        h ^= h >> np.uint32(shift)
        h *= np.uint32(mult)
    return ((h >> np.uint32(15)) & np.uint32(1)).astype(bool)


def _rain(fr: _Frame, key: np.ndarray) -> np.ndarray:
    """Slanted dashes, staggered from one row to the next."""
    b = fr.v
    return (_frac(b) < 0.6) & (_frac(fr.lin(1, 0.35) + 0.5 * np.floor(b)) < 0.28)


def _pluses(fr: _Frame, key: np.ndarray) -> np.ndarray:
    fa, fb = np.abs(_frac(fr.u) - 0.5), np.abs(_frac(fr.v) - 0.5)
    return ((fa < 0.13) & (fb < 0.4)) | ((fb < 0.13) & (fa < 0.4))


_TEXTURE_MARKS: dict[str, _Texture] = {
    "solid": lambda fr, key: np.zeros(fr.shape, dtype=bool),
    "stripes": lambda fr, key: _frac(fr.v) < 0.5,
    "grid": lambda fr, key: (_frac(fr.u) < 0.3) | (_frac(fr.v) < 0.3),
    "hexgrid": _hexgrid,
    "dots": _dots,
    "noise": _noise,
    # upward triangles of a triangular lattice (side 1 period), shrunk to leave gaps
    "triangles": lambda fr, key: _frac(fr.lin(1, -1 / _SQRT3)) + _frac(fr.lin(0, 2 / _SQRT3)) < 0.8,
    "zigzags": lambda fr, key: _frac(fr.v + 0.8 * np.abs(_frac(fr.u) - 0.5)) < 0.35,
    "rain": _rain,
    "pluses": _pluses,
}

# ------------------------------------------------------------------------------------------
# Rendering


def correlated_textures(seed: int) -> np.ndarray:
    """The correlated pairs: ``out[c]`` is the texture matched to colour ``c`` (a seeded
    permutation of the 10 textures, fixed by ``seed`` alone)."""
    return stream_rng(seed, "mapping").permutation(len(TEXTURES)).astype(np.int64)


def draw_geometry(n: int, seed: int) -> dict[str, np.ndarray]:
    """Per-image placement of ``n`` images: ``angle`` (degrees, in [-45, 45]), ``centre``
    ``(n, 2)`` (x right, y down, fractions of the side; the object's bounding circle lies
    inside the image), texture ``phase`` ``(n, 2)`` in periods and the noise ``key`` uint32."""
    rng = stream_rng(seed, "geometry")
    margin = RADIUS * BOX / 2
    return {
        "angle": rng.uniform(-MAX_ANGLE, MAX_ANGLE, n),
        "centre": rng.uniform(margin, 1 - margin, (n, 2)),
        "phase": rng.random((n, 2)),
        "key": rng.integers(0, 2**32, n, dtype=np.uint32),
    }


def supersampling(size: int) -> int:
    """Sub-pixels per pixel side: 4 below 64 px, 2 from 64 px."""
    return 4 if size < 64 else 2


def mark_colours() -> np.ndarray:
    """RGB ``(10, 3)`` of the texture marks of each colour: 35% of the colour, or for dark
    colours (luma below 0.35: blue, purple, ocean) 55% of the way to white."""
    rgb = np.asarray(list(COLOURS.values()))
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return np.where(luma[:, None] < 0.35, rgb + 0.55 * (1 - rgb), 0.35 * rgb)


def render(
    shape: np.ndarray,
    colour: np.ndarray,
    texture: np.ndarray,
    geometry: dict[str, np.ndarray],
    size: int = 32,
) -> np.ndarray:
    """Images ``(n, 3, size, size)`` uint8 of objects with the given attribute indices
    ``(n,)`` (into :data:`SHAPES`, :data:`COLOURS`, :data:`TEXTURES`) and placement
    (:func:`draw_geometry`). Images of one (shape, texture) are rendered together, in blocks
    of at most ``2**21`` sub-pixels."""
    shape, colour, texture = (np.asarray(x, dtype=np.int64) for x in (shape, colour, texture))
    out = np.empty((len(shape), 3, size, size), dtype=np.uint8)
    ss = supersampling(size)
    per_block = max(1, _CHUNK // (size * ss) ** 2 * 2)  # windows: 45% of an image
    for s, shape_name in enumerate(SHAPES):
        for t, texture_name in enumerate(TEXTURES):
            idx = np.flatnonzero((shape == s) & (texture == t))
            for start in range(0, len(idx), per_block):
                rows = idx[start : start + per_block]
                out[rows] = _render_block(
                    _SHAPE_TESTS[shape_name],
                    _TEXTURE_MARKS[texture_name],
                    colour[rows],
                    {k: v[rows] for k, v in geometry.items()},
                    size,
                    ss,
                )
    return out


def _coverage(mask: np.ndarray, ss: int) -> np.ndarray:
    """The share of each ``ss x ss`` block of ``mask`` ``(n, H ss, W ss)`` that is set,
    ``(n, 1, H, W)`` float32 (sums of strided uint8 slices: far faster than a reduction
    over small axes)."""
    b = mask.view(np.uint8)
    rows = b[:, :, 0::ss].copy()
    for i in range(1, ss):
        rows += b[:, :, i::ss]
    out = rows[:, 0::ss].copy()
    for i in range(1, ss):
        out += rows[:, i::ss]
    return (out.astype(np.float32) / np.float32(ss * ss))[:, None]


def _render_block(
    inside_test: _Mask,
    marks_of: _Texture,
    colour: np.ndarray,
    geometry: dict[str, np.ndarray],
    size: int,
    ss: int,
) -> np.ndarray:
    """Images of one shape and texture: coverage of the object and of its marks on a grid of
    ``ss x ss`` sub-pixels per pixel, then mixed with the colours. Only a window around each
    object is rendered (its bounding circle's box, 45% of the image); the rest is grey."""
    f32 = np.float32
    n = len(colour)
    reach = RADIUS * BOX / 2 * size  # the bounding circle's radius, in pixels
    width = min(size, math.ceil(2 * reach) + 2)
    centre = np.asarray(geometry["centre"], dtype=np.float64) * size  # pixels
    corner = np.clip(np.floor(centre - reach).astype(np.int64), 0, size - width)  # (n, 2)
    steps = (np.arange(width * ss, dtype=f32) + f32(0.5)) / f32(ss)  # sub-pixel centres

    def col(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=f32)[:, None, None]

    theta = np.deg2rad(geometry["angle"])
    cos, sin = col(np.cos(theta)), col(np.sin(theta))
    scale = f32(2 / (BOX * size))  # pixels -> half-box units
    offset = (corner - centre).astype(f32)  # window corner relative to the centre, pixels
    dx = (steps[None, None, :] + col(offset[:, 0])) * scale  # (n, 1, W)
    dy = -(steps[None, :, None] + col(offset[:, 1])) * scale  # (n, H, 1), pointing up
    # The object is turned by theta: turn the sub-pixels back.
    frame = _Frame(cos * dx, sin * dy, -sin * dx, cos * dy)
    inside = inside_test(frame)
    period = max(PERIOD, MIN_PERIOD_PX / size)
    phase = geometry["phase"]
    texture_frame = frame.scaled(BOX / 2 / period, col(phase[:, 0]), col(phase[:, 1]))
    key = np.asarray(geometry["key"], dtype=np.uint32)[:, None, None]
    marked = marks_of(texture_frame, key) & inside

    rgb = np.asarray(list(COLOURS.values()), dtype=f32)[colour][:, :, None, None]
    mark = mark_colours().astype(f32)[colour][:, :, None, None]
    image = f32(BACKGROUND) + _coverage(inside, ss) * (rgb - f32(BACKGROUND))
    image += _coverage(marked, ss) * (mark - rgb)
    window = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
    out = np.full((n, 3, size, size), round(BACKGROUND * 255), dtype=np.uint8)
    span = np.arange(width)
    rows = (corner[:, 1, None] + span)[:, :, None]
    cols = (corner[:, 0, None] + span)[:, None, :]
    out[np.arange(n)[:, None, None], :, rows, cols] = window.transpose(0, 2, 3, 1)
    return out

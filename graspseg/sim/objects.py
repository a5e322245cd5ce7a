"""The object catalogue of the physics simulator and its fixed development / held-out split.

Sources
-------
``random_urdfs``
    The 1000 procedurally generated objects shipped in ``pybullet_data/random_urdfs/NNN``. **Split rule:**
    object ``NNN`` is *held-out* when ``NNN % 5 == 0`` (200 objects) and *development* otherwise (800).
``pybullet_data`` named objects
    Household-like meshes shipped with pybullet (there is no YCB set in ``pybullet_data``): development
    ``lego``, ``jenga``, ``domino``, ``cube_small``; held-out ``mug`` (``objects/mug.urdf``), ``duck``
    (``duck_vhacd.urdf``).
``trimesh`` primitives
    Boxes, cylinders, capsules and cones built with trimesh, dimensions drawn from the trial seed (graspable
    by a 8 cm parallel jaw). Parametric, so they belong to both sets.
A folder (``--objects DIR``)
    Every ``*.urdf`` below it.

Meshes from ``pybullet_data`` are rescaled so that their second-largest bounding-box extent is 3.5–7 cm: lying on
their largest face, one horizontal extent then fits the gripper.

Nothing here imports pybullet; :mod:`graspseg.sim.world` does, lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, InputError, MissingDependencyError

#: Named pybullet_data objects per split (name -> path relative to pybullet_data).
NAMED_OBJECTS: dict[str, dict[str, str]] = {
    "dev": {"lego": "lego/lego.urdf", "jenga": "jenga/jenga.urdf", "domino": "domino/domino.urdf",
            "cube_small": "cube_small.urdf"},
    "heldout": {"mug": "objects/mug.urdf", "duck": "duck_vhacd.urdf"},
}
PRIMITIVE_KINDS: tuple[str, ...] = ("box", "cylinder", "capsule", "cone")
N_RANDOM_URDFS = 1000


def random_urdf_split(index: int) -> str:
    """``"heldout"`` when ``index % 5 == 0``, else ``"dev"`` (the documented fixed rule)."""
    return "heldout" if int(index) % 5 == 0 else "dev"


def pybullet_data_path() -> Path:
    try:
        import pybullet_data
    except ImportError:
        raise MissingDependencyError("pybullet", "sim", "the physics simulator") from None
    return Path(pybullet_data.getDataPath())


@dataclass(frozen=True)
class ObjectSpec:
    """One object to put in a scene.

    Attributes
    ----------
    name : str
        E.g. ``random_urdf_042``, ``mug``, ``box``.
    source : {"urdf", "primitive"}
    path : str or None
        URDF file (``source == "urdf"``).
    scale : float
        Global scaling applied when loading a URDF.
    primitive : dict
        ``{"kind": ..., dimensions in metres}`` for ``source == "primitive"``.
    rgba : (4,) floats or None
        Colour override (primitives always have one).
    """

    name: str
    source: str
    path: str | None = None
    scale: float = 1.0
    primitive: dict = field(default_factory=dict)
    rgba: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "path": self.path, "scale": self.scale,
                "primitive": dict(self.primitive), "rgba": None if self.rgba is None else list(self.rgba)}


@lru_cache(maxsize=4096)
def _urdf_mesh_extents(urdf: str) -> tuple[float, float, float] | None:
    """Bounding-box extents (sorted, metres, at scale 1) of the meshes a URDF references (None if unknown)."""
    import re

    p = Path(urdf)
    try:
        text = p.read_text()
    except OSError:
        return None
    mins, maxs = [], []
    for m in re.finditer(r'<mesh\s+filename="([^"]+)"(?:\s+scale="([^"]+)")?', text):
        mesh = p.parent / m.group(1)
        scale = np.array([float(x) for x in m.group(2).split()]) if m.group(2) else np.ones(3)
        if mesh.suffix.lower() != ".obj" or not mesh.exists():
            continue
        v = []
        with mesh.open() as f:
            for line in f:
                if line.startswith("v "):
                    v.append(line.split()[1:4])
        if v:
            a = np.asarray(v, float) * scale
            mins.append(a.min(0))
            maxs.append(a.max(0))
        break  # the visual mesh is enough
    for m in re.finditer(r'<box\s+size="([^"]+)"', text):
        s = np.array([float(x) for x in m.group(1).split()])
        mins.append(-s / 2)
        maxs.append(s / 2)
        break
    if not mins:
        return None
    ext = np.max(maxs, 0) - np.min(mins, 0)
    return tuple(float(x) for x in sorted(ext))


@lru_cache(maxsize=4096)
def urdf_collision_hull(urdf: str, scale: float = 1.0) -> tuple[float, tuple[float, float, float]] | None:
    """Volume (m^3) and (x, y, z) extents (m, link frame) of a URDF's first collision mesh at ``scale``, as
    pybullet collides it: each connected part of the mesh (the ``random_urdfs`` are unions of convex parts) as
    its convex hull. None when the URDF has no readable mesh."""
    import re

    try:
        import trimesh
    except ImportError:
        raise MissingDependencyError("trimesh", "sim", "object masses") from None
    p = Path(urdf)
    try:
        text = p.read_text()
    except OSError:
        return None
    m = re.search(r'<collision>.*?<mesh\s+filename="([^"]+)"(?:\s+scale="([^"]+)")?', text, re.S)
    if m is None:
        return None
    mesh_path = p.parent / m.group(1)
    if not mesh_path.exists():
        return None
    s = np.array([float(x) for x in m.group(2).split()]) if m.group(2) else np.ones(3)
    mesh = trimesh.load(str(mesh_path), force="mesh", process=False)
    mesh.apply_scale(s * float(scale))
    parts = mesh.split(only_watertight=False) or [mesh]
    volume = float(sum(part.convex_hull.volume for part in parts if len(part.vertices) >= 4))
    return volume, tuple(float(x) for x in mesh.extents)


def _graspable_scale(urdf: str, rng: np.random.Generator) -> float:
    ext = _urdf_mesh_extents(urdf)
    if ext is None or ext[1] <= 0:
        return 1.0
    return float(rng.uniform(0.035, 0.07) / ext[1])


_COLOURS = np.array([
    (0.72, 0.14, 0.12), (0.88, 0.45, 0.12), (0.86, 0.74, 0.18), (0.22, 0.52, 0.24), (0.12, 0.48, 0.50),
    (0.16, 0.30, 0.68), (0.44, 0.22, 0.55), (0.88, 0.52, 0.62), (0.86, 0.86, 0.83), (0.46, 0.46, 0.48),
    (0.46, 0.29, 0.16),
])


def random_primitive(rng: np.random.Generator) -> ObjectSpec:
    """A trimesh-built primitive with seeded, graspable dimensions (metres)."""
    kind = str(rng.choice(PRIMITIVE_KINDS))
    if kind == "box":
        dims = {"size_m": [float(rng.uniform(0.04, 0.10)), float(rng.uniform(0.03, 0.065)), float(rng.uniform(0.03, 0.10))]}
    elif kind == "cylinder":
        dims = {"radius_m": float(rng.uniform(0.018, 0.034)), "height_m": float(rng.uniform(0.05, 0.12))}
    elif kind == "capsule":
        dims = {"radius_m": float(rng.uniform(0.016, 0.03)), "height_m": float(rng.uniform(0.04, 0.09))}
    else:
        dims = {"radius_m": float(rng.uniform(0.022, 0.034)), "height_m": float(rng.uniform(0.05, 0.10))}
    rgb = _COLOURS[int(rng.integers(len(_COLOURS)))]
    return ObjectSpec(kind, "primitive", primitive={"kind": kind, **dims}, rgba=(*map(float, rgb), 1.0))


def primitive_mesh(spec: ObjectSpec):
    """The trimesh mesh of a primitive spec (object frame centred on its bounding box)."""
    try:
        import trimesh
    except ImportError:
        raise MissingDependencyError("trimesh", "sim", "primitive objects") from None
    d = spec.primitive
    kind = d.get("kind")
    if kind == "box":
        mesh = trimesh.creation.box(extents=d["size_m"])
    elif kind == "cylinder":
        mesh = trimesh.creation.cylinder(radius=d["radius_m"], height=d["height_m"], sections=32)
    elif kind == "capsule":
        mesh = trimesh.creation.capsule(radius=d["radius_m"], height=d["height_m"], count=[16, 16])
    elif kind == "cone":
        # a truncated cone (a cup-like frustum): a cylinder whose top ring is shrunk
        mesh = trimesh.creation.cylinder(radius=d["radius_m"], height=d["height_m"], sections=32)
        v = mesh.vertices.copy()
        top = v[:, 2] > 0
        v[top, :2] *= 0.6
        mesh = trimesh.Trimesh(v, mesh.faces, process=True)
    else:
        raise ConfigError(f"unknown primitive kind {kind!r}; choose from {list(PRIMITIVE_KINDS)}")
    mesh.apply_translation(-mesh.bounds.mean(0))
    return mesh


@dataclass(frozen=True)
class ObjectSet:
    """A pool of objects to draw scenes from.

    Attributes
    ----------
    name : str
        ``dev``, ``heldout`` or a folder path.
    urdfs : tuple of (name, path)
    primitive_fraction : float
        Probability that a drawn object is a trimesh primitive instead of a URDF.
    """

    name: str
    urdfs: tuple[tuple[str, str], ...]
    primitive_fraction: float = 0.25

    def __len__(self) -> int:
        return len(self.urdfs)

    def draw(self, rng: np.random.Generator) -> ObjectSpec:
        """One object (URDFs rescaled to a graspable size), seeded by ``rng``."""
        if not self.urdfs or rng.random() < self.primitive_fraction:
            return random_primitive(rng)
        name, path = self.urdfs[int(rng.integers(len(self.urdfs)))]
        return ObjectSpec(name, "urdf", path=path, scale=_graspable_scale(path, rng))


def object_set(name: str | Path = "dev", *, primitive_fraction: float = 0.25) -> ObjectSet:
    """The ``dev`` or ``heldout`` set (see the module docstring for the split), or every URDF under a folder."""
    s = str(name)
    if not 0.0 <= float(primitive_fraction) <= 1.0:
        raise ConfigError(f"primitive_fraction is a probability in [0, 1], got {primitive_fraction}")
    if s in ("dev", "heldout"):
        root = pybullet_data_path()
        urdfs = [(f"random_urdf_{i:03d}", str(root / "random_urdfs" / f"{i:03d}" / f"{i:03d}.urdf"))
                 for i in range(N_RANDOM_URDFS) if random_urdf_split(i) == s]
        urdfs += [(k, str(root / v)) for k, v in NAMED_OBJECTS[s].items()]
        urdfs = [(k, v) for k, v in urdfs if Path(v).exists()]
        return ObjectSet(s, tuple(urdfs), float(primitive_fraction))
    folder = Path(s)
    if not folder.is_dir():
        raise InputError(
            f"--objects {s!r} is neither 'dev', 'heldout' nor an existing folder of URDF files; "
            "give one of those (a folder is searched recursively for *.urdf)"
        )
    urdfs = tuple((p.stem, str(p)) for p in sorted(folder.rglob("*.urdf")))
    if not urdfs:
        raise InputError(f"folder {folder} contains no *.urdf files; point --objects at a folder of URDF objects")
    return ObjectSet(str(folder), urdfs, float(primitive_fraction))


def heldout_fraction() -> float:
    """Fraction of ``random_urdfs`` in the held-out split (0.2 by the rule)."""
    return sum(random_urdf_split(i) == "heldout" for i in range(N_RANDOM_URDFS)) / N_RANDOM_URDFS


__all__ = ["NAMED_OBJECTS", "ObjectSet", "ObjectSpec", "PRIMITIVE_KINDS", "heldout_fraction", "object_set",
           "primitive_mesh", "random_primitive", "random_urdf_split", "urdf_collision_hull"]

"""What an offline analysis run does: tracker, stride, prompt, loss and jump rules, outputs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..capture.sources import SourceOptions
from ..core.errors import ConfigError

#: Version of the per-episode outputs (results table columns, summary.json); bump on incompatible changes.
ANALYSIS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AnalysisConfig:
    """Every choice of an analysis run (stored in each summary, and part of the ``--resume`` fingerprint).

    Attributes
    ----------
    tracker : str
        Registered tracker (``rgbd`` re-prompts the pipeline's segmenter; ``sam2`` the SAM 2 video model).
    tracker_options : dict
        Passed to the tracker (e.g. ``search_px``, or ``model`` for ``sam2``).
    every : int
        The pipeline runs on every ``every``-th frame from the prompted one; the tracker follows every frame.
    prompt : dict or None
        The target (``Prompt.to_dict()`` form); None takes the prompt recorded with the episode.
    prompt_frame : int or None
        Frame the prompt applies to; None = the first frame with a recorded prompt, else 0.
    min_track_score : float
        A tracked mask scoring below this counts as lost ("score collapsed").
    min_iou_previous : float
        A tracked mask overlapping the previous one less than this counts as lost ("mask jumped").
    jump_factor : float
        A frame is flagged when the object centre departs from its constant-velocity prediction by more
        than ``jump_factor`` × the boundary-error bound (``shape.uncertainty["boundary_error_m"]``), or its
        width changes by more than ``jump_factor`` × twice that bound.
    overlays : int
        Most overlay images of flagged frames in the report.
    pipeline_config : dict
        Pipeline config (``PipelineConfig.to_dict()`` form, overrides applied); empty = the defaults.
    source : SourceOptions
        How bags and data sets are read.
    rrd : bool
        Also write ``episode.rrd``, a rerun recording of every frame (tracked mask, flags, best grasps; extra
        ``viz``).
    """

    tracker: str = "rgbd"
    tracker_options: dict = field(default_factory=dict)
    every: int = 1
    prompt: dict | None = None
    prompt_frame: int | None = None
    min_track_score: float = 0.05
    min_iou_previous: float = 0.05
    jump_factor: float = 2.0
    overlays: int = 8
    pipeline_config: dict = field(default_factory=dict)
    source: SourceOptions = field(default_factory=SourceOptions)
    rrd: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"every must be an integer >= 1 (analyse every n-th frame), got {self.every!r}")
        if self.prompt_frame is not None and (not isinstance(self.prompt_frame, int) or self.prompt_frame < 0):
            raise ConfigError(f"prompt_frame must be a frame index >= 0, got {self.prompt_frame!r}")
        for name in ("min_track_score", "min_iou_previous"):
            v = getattr(self, name)
            if not 0 <= float(v) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {v!r}")
        if not float(self.jump_factor) > 0:
            raise ConfigError(f"jump_factor must be > 0 (multiples of the boundary-error bound), got {self.jump_factor!r}")
        if not isinstance(self.overlays, int) or self.overlays < 0:
            raise ConfigError(f"overlays must be an integer >= 0, got {self.overlays!r}")
        if self.prompt is not None and not isinstance(self.prompt, dict):
            raise ConfigError(f"prompt must be a Prompt.to_dict() mapping or None, got {type(self.prompt).__name__}")
        if not isinstance(self.rrd, bool):
            raise ConfigError(f"rrd must be true or false (write episode.rrd), got {self.rrd!r}")
        if not isinstance(self.source, SourceOptions):
            raise ConfigError(f"source must be SourceOptions, got {type(self.source).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """Short hash of everything that changes the results."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]

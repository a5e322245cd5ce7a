"""The graspseg error hierarchy.

Every error derives from :class:`GraspsegError` and also from the matching builtin, so
``except ValueError`` keeps working for callers that do not know our types. Messages name the
value received, the value wanted, and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping


class GraspsegError(Exception):
    """Base of every error raised by graspseg."""


class ShapeError(GraspsegError, ValueError):
    """An array has the wrong shape, dtype or size."""


class FrameMismatchError(GraspsegError, ValueError):
    """Two transforms or point sets are expressed in frames that do not chain."""


class UnitsError(GraspsegError, ValueError):
    """A value is in the wrong unit or out of the physically sensible range."""


class ConfigError(GraspsegError, ValueError):
    """A configuration file or option is missing, malformed or inconsistent."""


class InputError(GraspsegError, ValueError):
    """User input (a prompt, an image, a file) cannot be used as given."""


class PromptError(InputError):
    """A segmentation prompt is invalid for the frame or the backend."""


class BackendNotFoundError(GraspsegError, KeyError):
    """A registry has no entry under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(GraspsegError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"'{package}' is not installed{what}; install it with: pip install 'graspseg[{extra}]'"
        )
        self.package = package
        self.extra = extra


class CaptureTimeoutError(GraspsegError, TimeoutError):
    """A camera or recording did not deliver a frame in time."""


class DeviceNotConnectedError(GraspsegError, RuntimeError):
    """A camera (or compute device) was asked for and is not there."""


class CalibrationError(GraspsegError, ValueError):
    """Calibration data are insufficient, inconsistent or degenerate."""


class SegmentationError(GraspsegError, RuntimeError):
    """A segmenter could not produce a mask for a valid prompt (e.g. no depth and no colour cue)."""


class NoGraspError(GraspsegError, RuntimeError):
    """No grasp was accepted; carries the number of candidates rejected for each reason."""

    def __init__(self, message: str, rejected_counts: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.rejected_counts = dict(rejected_counts or {})


class MaskError(InputError):
    """A mask cannot be turned into a point cloud (empty, too small, wrong size, or without usable depth)."""


class NoSupportPlaneError(GraspsegError, RuntimeError):
    """No support plane (table) could be found in the depth image."""

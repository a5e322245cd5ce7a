"""Image file reading and writing with clear errors (OpenCV under the hood, RGB order outside)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.io import atomic_write_bytes


def read_color(path: str | Path) -> np.ndarray:
    """Read an 8-bit colour image as (H, W, 3) RGB uint8."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"colour image {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read colour image {path}: not a readable PNG/JPEG (corrupt or wrong format?)")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        raise InputError(f"colour image {path} has dtype {img.dtype}; expected 8-bit RGB")
    return np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) -> RGB


def read_depth_raw(path: str | Path) -> np.ndarray:
    """Read a depth image: 16-bit single-channel PNG (raw units) or ``.npy`` (real numbers, returned as stored).

    Raises
    ------
    InputError
        Missing or unreadable file; a PNG that is not 16-bit single-channel; an ``.npy`` that is not a
        2-D array of real numbers (complex, boolean, text, object or structured arrays are refused).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"depth file {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as e:
            raise InputError(f"cannot read depth {path}: {e} (truncated or not an .npy file?)") from None
        if not isinstance(arr, np.ndarray):
            raise InputError(f"depth {path} holds {type(arr).__name__}, not one array; save it with np.save")
        if np.iscomplexobj(arr):
            raise InputError(
                f"depth {path} is complex ({arr.dtype}); depth is a real distance — save np.real(depth) if the "
                "imaginary part is zero, else the array is not a depth image"
            )
        if arr.dtype == bool or arr.dtype.kind not in "iuf":
            raise InputError(
                f"depth {path} has dtype {arr.dtype}; expected raw integer units (uint16) or floats (metres with "
                "depth_scale 1)"
            )
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2 or 0 in arr.shape:
            raise InputError(f"depth {path} has shape {arr.shape}; expected a non-empty (H, W) image")
        return arr
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read depth image {path}: not a readable 16-bit PNG (corrupt or wrong format?)")
    if img.ndim != 2:
        raise InputError(
            f"depth image {path} has {img.shape[2]} channels; expected a single-channel 16-bit PNG of raw depth "
            "units (a colour image given as depth?)"
        )
    if img.dtype != np.uint16:
        raise InputError(
            f"depth image {path} is {img.dtype}; expected a 16-bit PNG of raw depth units (0 = no reading)"
        )
    return img


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask PNG (any non-zero pixel, in any channel, is inside) as (H, W) bool."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read mask {path}: not a readable image")
    if img.ndim == 3:
        img = img[:, :, :3].max(axis=2) if img.shape[2] >= 3 else img.max(axis=2)
    if shape is not None and img.shape != tuple(shape):
        raise InputError(f"mask {path} is {img.shape[1]}x{img.shape[0]} but the frame is {shape[1]}x{shape[0]}")
    return img > 0


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) bool/uint8/uint16 or (H, W, 3) RGB uint8 image."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3:
        img = img[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise InputError(f"cannot encode image of shape {img.shape} and dtype {img.dtype} as PNG")
    return buf.tobytes()


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a PNG atomically (bool masks become 0/255; RGB stays RGB)."""
    return atomic_write_bytes(path, encode_png(image))

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
    """Read a depth image: 16-bit PNG (raw units) or ``.npy`` (returned as stored)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"depth file {path} does not exist")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"cannot read depth {path}: {e}") from None
        return arr
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise InputError(f"cannot read depth image {path}: not a readable 16-bit PNG (corrupt or wrong format?)")
    if img.dtype != np.uint16:
        raise InputError(
            f"depth image {path} is {img.dtype}; expected a 16-bit PNG of raw depth units (0 = no reading)"
        )
    return img


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask PNG (any non-zero pixel is inside) as (H, W) bool."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError(f"cannot read mask {path}: not a readable image")
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

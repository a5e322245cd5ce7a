"""Loading Hugging Face transformers checkpoints safely and offline, and choosing device and dtype.

Every SAM-family and grounding backend goes through this module:

* a checkpoint is a local directory (``config.json`` + ``model.safetensors`` or a sharded
  ``model.safetensors.index.json``, plus processor configs) or a repository id already in the Hugging Face
  cache; nothing is downloaded unless ``allow_download=True`` and ``HF_HUB_OFFLINE`` is not set;
* weights are read from safetensors only — pickled ``pytorch_model.bin`` files are refused;
* the checkpoint's ``model_type`` is checked against what the backend can run, and a partial checkpoint
  (weights missing for part of the model) is an error rather than a silently random layer.

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import ConfigError, DeviceNotConnectedError, MissingDependencyError

log = logging.getLogger(__name__)

#: Which backend runs which transformers ``model_type`` (used to point users at the right backend).
BACKEND_FOR_MODEL_TYPE: dict[str, str] = {
    "sam": "sam", "sam_hq": "sam",
    "sam2": "sam2", "sam2_video": "sam2", "sam3_tracker": "sam2", "sam3_tracker_video": "sam2",
    "edgetam": "edgetam", "edgetam_video": "edgetam",
    "sam3": "sam3", "sam3_video": "sam3",
    "owlv2": "grounded", "grounding-dino": "grounded", "mm-grounding-dino": "grounded",
}

DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16")

SAFE_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHT_FILES: tuple[str, ...] = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def require_torch_transformers(purpose: str) -> None:
    """Raise :class:`MissingDependencyError` (extra ``sam``) when torch or transformers is missing."""
    import importlib.util

    for mod in ("torch", "transformers"):
        if importlib.util.find_spec(mod) is None:
            raise MissingDependencyError(mod, "sam", purpose)


def resolve_device(device: str = "auto"):
    """A ``torch.device`` for ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises
    ------
    DeviceNotConnectedError
        CUDA or MPS asked for on a machine without it.
    ConfigError
        An unknown device string.
    """
    import torch

    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceNotConnectedError(
                f"device '{device}' was asked for but torch sees no CUDA GPU (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda or 'no'}); use device='cpu' or 'auto', or install a CUDA build of torch"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceNotConnectedError(
                f"device '{device}' asked for but only {torch.cuda.device_count()} CUDA device(s) exist; "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
        return dev
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceNotConnectedError("device 'mps' was asked for but this machine has no Apple MPS; use 'cpu' or 'auto'")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device '{device}'; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def resolve_dtype(dtype: str, device):
    """The torch dtype for ``"fp32"``, ``"bf16"`` or ``"fp16"`` on ``device``.

    fp16 is refused on CPU (many CPU kernels lack it and the results drift); bf16 works everywhere.
    """
    import torch

    name = str(dtype).strip().lower()
    aliases = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
    name = aliases.get(name, name)
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}")
    if name == "fp16" and device.type == "cpu":
        raise ConfigError("dtype 'fp16' is not supported on the CPU; use 'fp32' or 'bf16' there, or run on a GPU")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def option_number(value, name: str, backend: str, *, low: float | None = None, high: float | None = None,
                  integer: bool = False, low_open: bool = False, high_open: bool = False) -> float | int:
    """A numeric backend option checked for type and range; :class:`ConfigError` names option, value and range."""
    import math

    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    want = ("an integer" if integer else "a number") + (f" {' and '.join(x for x in (lo, hi) if x)}" if lo or hi else "")
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(float(value)) or (integer and not float(value).is_integer()):
        raise ConfigError(f"{backend}: option {name} is {value!r}; expected {want}")
    v = float(value)
    if (low is not None and (v <= low if low_open else v < low)) or (
            high is not None and (v >= high if high_open else v > high)):
        raise ConfigError(f"{backend}: option {name} = {value!r} is out of range; expected {want}")
    return int(v) if integer else v


def option_flag(value, name: str, backend: str) -> bool:
    """A boolean backend option (``True``/``False`` only)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{backend}: option {name} is {value!r}; expected true or false")
    return value


def check_model_argument(model, backend: str, flag: str = "--model") -> None:
    """Refuse a checkpoint argument that is not a path or repository id (``None``, a number, a list)."""
    if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
        raise ConfigError(
            f"{backend}: the checkpoint is {model!r}; pass a checkpoint directory or a Hugging Face repository id "
            f"(on the command line: {flag} DIR)"
        )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_checkpoint(model: str | os.PathLike, *, allow_download: bool = False) -> Path:
    """The local directory holding checkpoint ``model`` (a path or a Hugging Face repository id).

    A repository id is looked up in the Hugging Face cache; it is downloaded only when
    ``allow_download`` is true and ``HF_HUB_OFFLINE`` is not set.
    """
    text = str(model)
    path = Path(text).expanduser()
    is_repo_id = (not path.exists()) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None
    looks_like_path = not is_repo_id
    if looks_like_path:
        if not path.is_dir():
            raise ConfigError(
                f"checkpoint directory '{text}' does not exist; download one with e.g. "
                f"`hf download facebook/sam2.1-hiera-tiny --local-dir {text}` (see docs/sam_backends.md)"
            )
        check_checkpoint_dir(path)
        return path
    # A repository id "owner/name".
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub ships with transformers
        raise MissingDependencyError("huggingface_hub", "sam", f"loading '{text}' from the Hugging Face cache") from exc
    download = allow_download and not _offline()
    try:
        local = Path(snapshot_download(
            text, local_files_only=not download,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"],
        ))
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        why = "downloading is off (HF_HUB_OFFLINE is set)" if _offline() else (
            "downloading was not asked for" if not allow_download else f"the download failed ({type(exc).__name__})")
        raise ConfigError(
            f"checkpoint '{text}' is not in the Hugging Face cache and {why}; fetch it once with "
            f"`hf download {text} --local-dir <dir>` and pass that directory, or pass allow_download=True"
        ) from exc
    check_checkpoint_dir(local)
    return local


def check_checkpoint_dir(path: Path) -> None:
    """Raise :class:`ConfigError` when ``path`` lacks ``config.json`` or safetensors weights."""
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"'{path}' has no config.json, so it is not a transformers checkpoint; it needs config.json, "
            "model.safetensors and the processor configs (`hf download <repo> --local-dir <dir>` writes them)"
        )
    if not any((path / f).is_file() for f in SAFE_WEIGHT_FILES):
        pickled = [f for f in PICKLED_WEIGHT_FILES if (path / f).is_file()]
        if pickled:
            raise ConfigError(
                f"'{path}' holds only pickled weights ({pickled[0]}); graspseg never unpickles checkpoints. Download "
                "the safetensors version or convert once in a trusted environment with "
                "model.save_pretrained(dir, safe_serialization=True)"
            )
        raise ConfigError(
            f"'{path}' has config.json but no model.safetensors; the checkpoint is incomplete — download it again "
            "(`hf download <repo> --local-dir <dir>`)"
        )


def check_weight_files(path: Path) -> None:
    """Raise :class:`ConfigError` when the checkpoint's safetensors file(s) are truncated, corrupt or missing shards."""
    if (path / "model.safetensors").is_file():
        check_safetensors_file(path / "model.safetensors")
    else:
        index = read_json_if_present(path, "model.safetensors.index.json")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConfigError(
                f"'{path / 'model.safetensors.index.json'}' has no 'weight_map'; the sharded checkpoint index is "
                "damaged — download the checkpoint again"
            )
        for shard in sorted({str(v) for v in weight_map.values()}):
            if not (path / shard).is_file():
                raise ConfigError(f"'{path}' lacks the shard {shard} named in its index; download the checkpoint again")
            check_safetensors_file(path / shard)


def check_safetensors_file(path: Path) -> None:
    """Raise :class:`ConfigError` when ``path`` is not a complete safetensors file.

    Reads only the header (8-byte little-endian length, then JSON) and checks that every tensor's byte
    range lies inside the file, so a truncated or corrupt download is named before torch touches it.
    """
    fix = "the download is truncated or corrupt — download the checkpoint again (`hf download <repo> --local-dir <dir>`)"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConfigError(f"'{path}' is {size} bytes, too short for a safetensors file; {fix}")
            n = int.from_bytes(head, "little")
            if n <= 1 or 8 + n > size or n > 100_000_000:
                raise ConfigError(
                    f"'{path}' declares a {n}-byte header but the file has {size} bytes; {fix}"
                )
            header = json.loads(f.read(n).decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read '{path}': {e.strerror or e}; check its permissions") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"'{path}' has no readable safetensors header (not a safetensors file?); {fix}") from None
    if not isinstance(header, dict):
        raise ConfigError(f"'{path}' has a malformed safetensors header; {fix}")
    data_size = size - 8 - n
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ConfigError(f"'{path}': tensor {name!r} has no valid data_offsets in the header; {fix}")
        end = max(end, offsets[1])
    if end > data_size:
        raise ConfigError(
            f"'{path}' is truncated: its tensors need {end} bytes of data but only {data_size} follow the header; {fix}"
        )


#: Files a tokenizer can be read from (fast ``tokenizer.json``, BPE ``vocab.json`` + ``merges.txt``, WordPiece
#: ``vocab.txt``, SentencePiece ``spiece.model`` (SigLIP) or ``tokenizer.model``).
TOKENIZER_FILES: tuple[tuple[str, ...], ...] = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("vocab.txt",),
                                                ("spiece.model",), ("tokenizer.model",))


def has_tokenizer_files(path: Path) -> bool:
    """Whether checkpoint ``path`` holds tokenizer files (transformers silently builds an empty tokenizer otherwise)."""
    return any(all((path / f).is_file() for f in group) for group in TOKENIZER_FILES)


def read_config(path: Path) -> dict:
    """The checkpoint's ``config.json`` as a dict."""
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read '{path / 'config.json'}': {exc}; download the checkpoint again") from exc


def check_model_type(config: dict, accepted: tuple[str, ...], backend: str, path: Path) -> str:
    """The config's ``model_type`` if ``backend`` runs it, else :class:`ConfigError` naming the right backend."""
    model_type = str(config.get("model_type", ""))
    if model_type in accepted:
        return model_type
    other = BACKEND_FOR_MODEL_TYPE.get(model_type)
    hint = f"use backend '{other}' for it" if other and other != backend else \
        f"give a checkpoint of type {', '.join(accepted)}"
    raise ConfigError(
        f"checkpoint '{path}' is a '{model_type or 'unknown'}' model but backend '{backend}' runs "
        f"{', '.join(accepted)}; {hint}"
    )


def read_json_if_present(path: Path, name: str) -> dict:
    f = path / name
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read '{f}': {exc}; download the checkpoint again") from exc


def load_pretrained(model_class, path: Path, *, device, dtype, backend: str):
    """``model_class.from_pretrained(path)`` from safetensors, offline, in eval mode on ``device``.

    Raises :class:`ConfigError` when the checkpoint lacks weights for part of the model (a partial
    checkpoint would otherwise leave those layers randomly initialised).
    """
    import warnings

    check_weight_files(Path(path))
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors ships with transformers
        SafetensorError = OSError  # noqa: N806
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*model of type.*")
        try:
            model, info = model_class.from_pretrained(
                str(path), local_files_only=True, use_safetensors=True, dtype=dtype, output_loading_info=True,
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, SafetensorError) as exc:
            raise ConfigError(
                f"cannot load '{path}' as {model_class.__name__} for backend '{backend}': {exc}; "
                "check that the directory is a complete checkpoint of the right model"
            ) from exc
    missing = list(info.get("missing_keys", []) or [])
    mismatched = list(info.get("mismatched_keys", []) or [])
    if missing or mismatched:
        bad = (missing + [str(m[0]) if isinstance(m, tuple) else str(m) for m in mismatched])
        raise ConfigError(
            f"checkpoint '{path}' is partial for {model_class.__name__}: {len(bad)} weight(s) missing or of the "
            f"wrong shape (e.g. {', '.join(bad[:3])}); download the full checkpoint again"
        )
    return model.to(device).eval()


@dataclass(frozen=True)
class ImageNorm:
    """Pixel normalisation read from ``preprocessor_config.json`` (ImageNet defaults)."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rescale: float = 1.0 / 255.0

    @classmethod
    def from_dir(cls, path: Path) -> ImageNorm:
        cfg = read_json_if_present(path, "preprocessor_config.json")
        if not cfg:
            return cls()
        return cls(tuple(cfg.get("image_mean", cls.mean)), tuple(cfg.get("image_std", cls.std)),
                   float(cfg.get("rescale_factor", cls.rescale)))

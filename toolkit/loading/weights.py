"""Checkpoints: read them safely, find the state dict inside, load it with errors that say why.

A checkpoint is a plain state dict, or a dict wrapping one (what ``edgetk train`` writes)::

    {"state_dict": {...}, "labels": ["ok", "scratch"], "arch": "zoo:defect-cls",
     "imgsz": [96, 96], "in_chans": 3}

Everything is read with ``torch.load(weights_only=True)``: a file that pickles Python objects
(``torch.save(model)``) is refused, since unpickling it could run arbitrary code.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import BadInputError, MissingDependencyError, ModelLoadError

log = logging.getLogger(__name__)

# Where trainers put the weights inside a wrapping dict, most specific first.
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "ema", "net")
# Added by nn.DataParallel / DistributedDataParallel and by torch.compile.
_PREFIXES = ("module.", "_orig_mod.")
_SHOW = 4  # keys named per category in a mismatch message


@dataclass(frozen=True)
class Checkpoint:
    """A state dict and what the checkpoint says about the model it belongs to."""

    path: str
    state_dict: dict[str, Any]
    labels: tuple[str, ...] | None = None
    arch: str | None = None
    imgsz: tuple[int, int] | None = None
    in_chans: int | None = None

    @property
    def num_classes(self) -> int | None:
        return len(self.labels) if self.labels else None


def is_torchscript_archive(path: Path) -> bool:
    """True when ``path`` is a TorchScript zip (``torch.jit.save``), not a pickled dict."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1] == "constants.pkl" for n in z.namelist())


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint file safely and normalize it.

    Raises:
        BadInputError: the file does not exist.
        ModelLoadError: it is not a checkpoint, pickles objects, or holds no state dict.
    """
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"weights file not found: {p}")
    if p.is_dir():
        raise BadInputError(f"weights path is a folder, expected a file: {p}")
    data = _load_safetensors(p) if p.suffix == ".safetensors" else _load_torch(p)
    return _normalize(data, str(path))


def _load_torch(p: Path) -> Any:
    import torch

    if is_torchscript_archive(p):
        raise ModelLoadError(
            f"{p} is a TorchScript program, not weights: pass it as the MODEL argument"
        )
    try:
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:  # not a pickle of objects: garbage or another format
            raise ModelLoadError(
                f"cannot read weights {p}: not a PyTorch checkpoint ({_last_line(e)})"
            ) from e
        raise ModelLoadError(
            f"{p} pickles Python objects ({found.group(1)}), e.g. a whole model saved with torch.save(model); "
            "safe loading refuses it because unpickling can run code: save "
            "model.state_dict() instead"
        ) from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... on a non-checkpoint
        raise ModelLoadError(
            f"cannot read weights {p}: not a PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from e


def _last_line(e: BaseException) -> str:
    """The telling line of torch's multi-line load error (the WeightsUnpickler reason)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("Unsupported")), "unreadable pickle data")


def _load_safetensors(p: Path) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError as e:
        raise MissingDependencyError("safetensors", None, f"reading {p.name}") from e
    try:
        return load_file(str(p), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError on a bad file
        raise ModelLoadError(f"cannot read weights {p}: {type(e).__name__}: {e}") from e


def _is_state_dict(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _normalize(data: Any, path: str) -> Checkpoint:
    if not isinstance(data, Mapping):
        raise ModelLoadError(f"{path} holds a {type(data).__name__}, not a state dict")
    meta: Mapping[str, Any] = {}
    if _is_state_dict(data):
        state = dict(data)
    else:
        key = next((k for k in _STATE_KEYS if _is_state_dict(data.get(k))), None)
        if key is None:
            keys = ", ".join(str(k) for k in list(data)[:8])
            raise ModelLoadError(
                f"no state dict in {path} (top-level keys: {keys}; expected tensors, or one of "
                f"{', '.join(_STATE_KEYS)} holding them)"
            )
        state, meta = dict(data[key]), data
    return Checkpoint(
        path=path,
        state_dict=strip_prefixes(state),
        labels=_labels(meta.get("labels", meta.get("names")), path),
        arch=str(meta["arch"]) if isinstance(meta.get("arch"), str) else None,
        imgsz=_imgsz(meta.get("imgsz"), path),
        in_chans=int(meta["in_chans"]) if isinstance(meta.get("in_chans"), int) else None,
    )


def strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Drop ``module.`` / ``_orig_mod.`` when every key carries it (DataParallel, compile)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _labels(value: Any, path: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):  # Ultralytics style {0: "person", ...}
        value = [value[k] for k in sorted(value)]
    if not isinstance(value, (list, tuple)) or not value:
        raise ModelLoadError(f"{path}: 'labels' must be a non-empty list of names")
    return tuple(str(v) for v in value)


def _imgsz(value: Any, path: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = (value, value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ModelLoadError(f"{path}: 'imgsz' must be an int or [h, w], got {value!r}")


def apply_state_dict(module: Any, ckpt: Checkpoint, what: str) -> None:
    """Load ``ckpt`` into ``module``; every key must fit, else one line naming what does not.

    ``num_batches_tracked`` buffers may be absent (older checkpoints): they only count steps.

    Raises:
        ModelLoadError: missing or unexpected keys, or shapes that differ.
    """
    own = module.state_dict()
    state = ckpt.state_dict
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: weights {list(state[k].shape)}, model {list(own[k].shape)}"
        for k in state
        if k in own and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [
            _some(missing, "missing key"),
            _some(unexpected, "unexpected key"),
            _some(mismatched, "shape mismatch", plural="shape mismatches"),
        ]
        hint = ""
        if mismatched and not missing and not unexpected:
            hint = " (trained with another class count or input size? see --num-classes)"
        raise ModelLoadError(
            f"weights {ckpt.path} do not fit {what}: {'; '.join(p for p in parts if p)}{hint}"
        )
    module.load_state_dict(state, strict=False)
    log.debug("loaded %d tensors from %s into %s", len(state), ckpt.path, what)


def _some(items: list[str], noun: str, plural: str | None = None) -> str:
    if not items:
        return ""
    name = noun if len(items) == 1 else (plural or noun + "s")
    shown = ", ".join(items[:_SHOW]) + (", ..." if len(items) > _SHOW else "")
    return f"{len(items)} {name} ({shown})"

"""Model references (SPEC "Model references"): parse the string, build the ``nn.Module``.

Forms: ``zoo:NAME``, ``path/to/file.py:Name``, ``package.module:Name``, ``torchvision:NAME``,
``timm:NAME``, ``file.ts`` / ``file.pt`` (TorchScript), ``file.pt2`` (torch.export). ``Name``
is an ``nn.Module`` class, a factory function, or a module instance.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from toolkit.errors import BadInputError, MissingDependencyError, ModelLoadError

log = logging.getLogger(__name__)

Kind = Literal["zoo", "torchvision", "timm", "pyfile", "module", "torchscript", "pt", "pt2"]

FORMS = (
    "zoo:NAME, path/to/file.py:Name, package.module:Name, torchvision:NAME, timm:NAME, "
    "file.ts / file.pt (TorchScript), file.pt2 (torch.export)"
)
_TORCHSCRIPT_SUFFIXES = (".ts", ".jit", ".torchscript")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class Reference:
    """A parsed model reference: its kind, the file/module/name it targets, and a symbol."""

    kind: Kind
    target: str
    symbol: str = ""

    @property
    def path(self) -> Path:
        return Path(self.target)


def parse_reference(ref: str) -> Reference:
    """Tell which form ``ref`` is, without importing or reading anything heavy.

    Raises:
        BadInputError: not one of the forms, or a file that does not exist.
    """
    ref = ref.strip()
    if not ref:
        raise BadInputError(f"empty model reference (expected {FORMS})")
    for prefix in ("zoo", "torchvision", "timm"):
        if ref.startswith(prefix + ":"):
            name = ref[len(prefix) + 1 :].strip()
            if not name:
                raise BadInputError(f"'{ref}' names no model (expected {prefix}:NAME)")
            return Reference(prefix, name)  # type: ignore[arg-type]
    suffix = Path(ref).suffix.lower()
    if suffix in (*_TORCHSCRIPT_SUFFIXES, ".pt", ".pth", ".pt2"):
        _must_exist(Path(ref), "model file")
        if suffix == ".pt2":
            return Reference("pt2", ref)
        return Reference("torchscript" if suffix in _TORCHSCRIPT_SUFFIXES else "pt", ref)
    if suffix in (".onnx", ".engine"):
        raise BadInputError(f"{ref} is not a PyTorch model (this command needs one of: {FORMS})")
    target, sep, symbol = ref.rpartition(":")
    if sep:
        if not _DOTTED.match(symbol):
            raise BadInputError(f"'{symbol}' in '{ref}' is not a Python name")
        if target.endswith(".py"):
            _must_exist(Path(target), "model file")
            return Reference("pyfile", target, symbol)
        if _DOTTED.match(target):
            return Reference("module", target, symbol)
    if ref.endswith(".py"):
        raise BadInputError(f"name the class or factory in {ref}: '{ref}:Name'")
    raise BadInputError(f"unknown model reference '{ref}' (expected {FORMS}){_zoo_hint(ref)}")


def _must_exist(p: Path, what: str) -> None:
    if not p.exists():
        raise BadInputError(f"{what} not found: {p}")
    if p.is_dir():
        raise BadInputError(f"{what} is a folder, expected a file: {p}")


def _zoo_hint(ref: str) -> str:
    try:
        from toolkit.zoo import get_registry
    except ImportError:  # the zoo is optional for this hint
        return ""
    return f"; did you mean zoo:{ref}?" if ref in get_registry() else ""


# -- Python objects ----------------------------------------------------------------------


def load_python_symbol(ref: Reference) -> Any:
    """Import the file or module of a ``pyfile``/``module`` reference and get its symbol."""
    module = _exec_file(ref.path) if ref.kind == "pyfile" else _import_module(ref.target)
    obj: Any = module
    for part in ref.symbol.split("."):
        if not hasattr(obj, part):
            defined = _candidates(module)
            known = f" (it defines: {', '.join(defined)})" if defined else ""
            raise ModelLoadError(f"no '{ref.symbol}' in {ref.target}{known}")
        obj = getattr(obj, part)
    return obj


def _exec_file(path: Path) -> Any:
    resolved = path.resolve()
    # A name unique per file, so two model.py files in different folders never collide.
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"edgetk_user_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    folder = str(resolved.parent)
    # The file may import its neighbours (from blocks import Conv), as when run as a script.
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # user code: any error, reported with its reason
        sys.modules.pop(name, None)
        raise ModelLoadError(f"error while importing {path}: {type(e).__name__}: {e}") from e
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(name: str) -> Any:
    # The console script's sys.path lacks the working folder; `edgetk export models:build`
    # should find ./models.py as `python -m` would (uvicorn does the same for "main:app").
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise ModelLoadError(f"cannot import module '{name}': {e}") from e
    except Exception as e:  # user code: any error, reported with its reason
        raise ModelLoadError(f"error while importing {name}: {type(e).__name__}: {e}") from e
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _candidates(module: Any) -> list[str]:
    """nn.Module classes and functions defined in ``module`` (for 'did you mean')."""
    from torch import nn

    out = []
    for key, value in vars(module).items():
        if key.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if (inspect.isclass(value) and issubclass(value, nn.Module)) or inspect.isfunction(value):
            out.append(key)
    return out[:10]


def instantiate(
    obj: Any, what: str, *, num_classes: int | None = None, in_chans: int | None = None
) -> Any:
    """Turn a class, factory or instance into an ``nn.Module``.

    ``num_classes`` is passed when the callable takes it; ``in_chans`` (or ``in_channels``)
    when it names that parameter.
    """
    from torch import nn

    if isinstance(obj, nn.Module):
        if num_classes is not None:
            log.warning("%s is a module instance: num_classes=%d not applied", what, num_classes)
        return obj
    if not callable(obj):
        raise BadInputError(
            f"{what} is a {type(obj).__name__}, not an nn.Module class or a factory function"
        )
    kwargs: dict[str, Any] = {}
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # builtins and some C extensions have no signature
        params = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if num_classes is not None:
        if "num_classes" in params or takes_any:
            kwargs["num_classes"] = num_classes
        else:
            log.warning("%s takes no num_classes: built with its own class count", what)
    if in_chans is not None:
        key = next((k for k in ("in_chans", "in_channels") if k in params), None)
        if key is not None:
            kwargs[key] = in_chans
    try:
        module = obj(**kwargs)
    except Exception as e:  # user code: any error, reported with its reason
        raise ModelLoadError(f"cannot build {what}: {type(e).__name__}: {e}") from e
    if not isinstance(module, nn.Module):
        raise BadInputError(f"{what} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


# -- model hubs --------------------------------------------------------------------------


def _import_hub(name: str, what: str) -> Any:
    """Import torchvision or timm; a torchvision built for another torch gets the fix named.

    PyPI's torchvision wheels are built against PyPI's (CUDA) torch; beside a CPU build of
    torch their compiled ops fail to register ("operator torchvision::nms does not exist").
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingDependencyError(name, name, what) from e
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        import torch

        major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
        tv = f"0.{minor + 15}" if major == 2 else "the matching release"
        local = torch.__version__.partition("+")[2] or "cpu"
        raise ModelLoadError(
            f"{what}: the installed torchvision does not fit torch {torch.__version__} ({e}); "
            f"install the torchvision built for it: pip install 'torchvision=={tv}.*' "
            f"--index-url https://download.pytorch.org/whl/{local}"
        ) from e


def build_hub_model(
    ref: Reference, *, num_classes: int | None = None, in_chans: int | None = None
) -> Any:
    """A torchvision or timm architecture with random weights (``--weights`` fills them)."""
    kwargs: dict[str, Any] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    what = f"{ref.kind}:{ref.target}"
    if ref.kind == "torchvision":
        torchvision = _import_hub("torchvision", what)
        if in_chans not in (None, 3):
            raise BadInputError(f"{what}: torchvision models take 3 input channels")
        try:
            return torchvision.models.get_model(ref.target, weights=None, **kwargs)
        except ValueError as e:  # unknown name
            raise ModelLoadError(f"{what}: {e}") from e
    timm = _import_hub("timm", what)
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    try:
        return timm.create_model(ref.target, pretrained=False, **kwargs)
    except RuntimeError as e:  # timm: "Unknown model (name)"
        raise ModelLoadError(f"{what}: {e}") from e


# -- saved programs ----------------------------------------------------------------------


def load_torchscript(path: Path) -> Any:
    """``torch.jit.load`` on CPU, with a one-line error for a file that is not a program."""
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot load TorchScript program {path}: {first}") from e


def load_exported_program(path: Path) -> tuple[Any, tuple[int, ...] | None]:
    """``torch.export.load(path).module()`` and the NCHW shape of its example input, if kept."""
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as e:  # torch raises many types on a bad archive
        raise ModelLoadError(f"cannot load torch.export program {path}: {e}") from e
    shape = None
    example = getattr(program, "example_inputs", None)
    if example and example[0] and isinstance(example[0][0], torch.Tensor):
        first = example[0][0]
        shape = tuple(int(s) for s in first.shape) if first.dim() == 4 else None
    return program.module(), shape

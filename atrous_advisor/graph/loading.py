"""Load the user's model from ``path/file.py``, ``path/file.py:name`` or ``package.module:callable``.

Models are built on the meta device when they allow it: no memory, no weights, nothing downloaded. A model
that cannot be built there is built on the CPU, with a note. Every failure is a ``ModelLoadError`` with one
line that names the file and, for errors in the user's code, where in it they happened.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from atrous_advisor.errors import MissingExtraError, ModelLoadError
from atrous_advisor.usercode import user_code


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - the torch extra is installed in development
        raise MissingExtraError("this command needs PyTorch: pip install 'atrous-advisor[torch]'") from exc
    return torch


@dataclass
class LoadedModel:
    model: Any  # torch.nn.Module, in eval mode
    name: str  # the spec as given
    device: str  # "meta" or "cpu"
    notes: list[str] = field(default_factory=list)


_PACKAGE = str(Path(__file__).resolve().parents[1])


def _compact(exc: BaseException, user_file: Optional[Path] = None) -> str:
    """``NameError: name 'x' is not defined (model.py:12)``: the error and the user's innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    for frame in reversed(frames):
        in_user = user_file is not None and Path(frame.filename).resolve() == user_file
        if in_user or (user_file is None and "site-packages" not in frame.filename and "atrous_advisor" not in frame.filename):
            where = f"{os.path.relpath(frame.filename) if in_user else frame.filename}:{frame.lineno}"
            break
    if where is None and not isinstance(exc, SyntaxError):  # a SyntaxError's message names file and line
        # never this package's own call site (a bad keyword fails right there) nor importlib's frozen frames
        outside = [f for f in frames if not f.filename.startswith((_PACKAGE, "<"))]
        if outside:
            where = f"{Path(outside[-1].filename).name}:{outside[-1].lineno}"
    message = " ".join(str(exc).split()) or type(exc).__name__
    if len(message) > 300:
        message = message[:300] + "…"
    return f"{type(exc).__name__}: {message}" + (f" ({where})" if where else "")


def _split_spec(spec: str) -> tuple[str, Optional[str], bool]:
    """(target, attribute, is_file). A spec with ``.py`` before the colon (or at the end) is a file."""
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    attr_or_none = attr or None
    if target.endswith(".py") or os.sep in target or "/" in target:
        return target, attr_or_none, True
    return target, attr_or_none, False


def _import_file(path: Path) -> ModuleType:
    name = f"_atrous_user_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"model file {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.path.insert(0, folder)  # so the file can import its neighbours
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelLoadError(f"model file {path}: import failed: {_compact(exc, path)}") from exc
    finally:
        sys.modules.pop(name, None)
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _import_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"model {spec!r}: no module named {exc.name or name!r}") from exc
    except Exception as exc:
        raise ModelLoadError(f"model {spec!r}: importing {name} failed: {_compact(exc)}") from exc


def _pick(module: ModuleType, attr: Optional[str], spec: str) -> tuple[Any, str]:
    torch = _torch()
    if attr:
        if not hasattr(module, attr):
            owner = Path(module.__file__).name if module.__file__ and module.__name__.startswith("_atrous_user_") else module.__name__
            raise ModelLoadError(f"model {spec!r}: {owner} has no attribute {attr!r}")
        return getattr(module, attr), attr
    if callable(getattr(module, "build_model", None)):
        return module.build_model, "build_model"
    if isinstance(getattr(module, "model", None), torch.nn.Module):
        return module.model, "model"
    raise ModelLoadError(
        f"model {spec!r}: no model found: define build_model() or a module-level `model`, or name one as FILE.py:NAME"
    )


def _instantiate(obj: Any, what: str, kwargs: dict, spec: str, user_file: Optional[Path]) -> Any:
    torch = _torch()
    if isinstance(obj, torch.nn.Module):
        if kwargs:
            raise ModelLoadError(f"model {spec!r}: {what} is already a module instance; --kwargs cannot be applied")
        return obj
    if not callable(obj):
        raise ModelLoadError(f"model {spec!r}: {what} is a {type(obj).__name__}, not an nn.Module or a callable")
    try:
        inspect.signature(obj).bind(**kwargs)
    except TypeError as exc:  # the arguments do not fit the callable: the user's --kwargs
        raise ModelLoadError(f"model {spec!r}: calling {what}(**kwargs) failed: {exc}") from exc
    except ValueError:  # no signature to check (a builtin): the call itself says
        pass
    try:
        built = obj(**kwargs)
    except Exception as exc:  # raised inside the builder (a TypeError there is the builder's own)
        if _is_network(exc):
            given = [k for k in NO_WEIGHTS if k in kwargs]
            hint = "; it tried to download weights: pass --kwargs with its weights argument set to null/false" + (
                f" (already given: {', '.join(given)})" if given else ""
            )
            raise ModelLoadError(f"model {spec!r}: building the model needs the network: {_compact(exc, user_file)}{hint}") from exc
        raise ModelLoadError(f"model {spec!r}: building the model failed: {_compact(exc, user_file)}") from exc
    if not isinstance(built, torch.nn.Module):
        raise ModelLoadError(f"model {spec!r}: {what}() returned a {type(built).__name__}, not an nn.Module")
    return built


# builder arguments that fetch pretrained weights, and the value that means "do not": torchvision,
# segmentation_models_pytorch, timm-style builders. The model's geometry does not depend on its weights.
NO_WEIGHTS = {"weights": None, "weights_backbone": None, "encoder_weights": None, "pretrained": False, "pretrained_backbone": False}


def _is_network(exc: BaseException) -> bool:
    """A download attempt that failed (offline, blocked, hub unreachable)."""
    import urllib.error

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError)) or name in (
            "ConnectTimeout", "ConnectionError", "HTTPError", "LocalEntryNotFoundError", "OfflineModeIsEnabled",
        ):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def offline_kwargs(obj: Any, kwargs: dict) -> dict:
    """The weights arguments ``obj`` accepts and the user did not give, set so nothing is downloaded."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return {}
    out = {}
    for k, v in NO_WEIGHTS.items():
        p = params.get(k)
        # only where the default would fetch something: a required or already-off argument is left alone
        if p is not None and k not in kwargs and p.default is not inspect.Parameter.empty and p.default is not v:
            if not (v is None and p.default is None) and not (v is False and p.default in (False, None)):
                out[k] = v
    return out


def _build(spec: str, kwargs: dict, device: str) -> Any:
    torch = _torch()
    target, attr, is_file = _split_spec(spec)
    user_file = None
    with torch.device(device), user_code(spec):
        if is_file:
            path = Path(target).expanduser()
            if not path.is_file():
                raise ModelLoadError(f"model file {target}: no such file")
            user_file = path.resolve()
            module = _import_file(user_file)
        else:
            if not attr:
                raise ModelLoadError(
                    f"model {spec!r}: expected path/file.py, path/file.py:name or package.module:callable"
                )
            module = _import_module(target, spec)
        obj, what = _pick(module, attr, spec)
        auto = offline_kwargs(obj, kwargs) if not isinstance(obj, torch.nn.Module) else {}
        model = _instantiate(obj, what, {**kwargs, **auto}, spec, user_file)
        return model, auto


def load_model(spec: str, kwargs: Optional[dict] = None, device: str = "meta") -> LoadedModel:
    """Build the model named by ``spec`` with ``kwargs``, in eval mode, on ``device`` ("meta" or "cpu").

    On "meta" a model whose construction needs real tensors is rebuilt on the CPU, with a note.
    """
    torch = _torch()
    kwargs = dict(kwargs or {})
    notes: list[str] = []
    if device not in ("meta", "cpu"):
        raise ModelLoadError(f"device {device!r}: expected 'meta' or 'cpu'")
    used = device
    try:
        model, auto = _build(spec, kwargs, device)
    except ModelLoadError as exc:
        # a network failure is not about the device: retrying on the CPU would only download again
        if device != "meta" or "building the model failed" not in str(exc) and "import failed" not in str(exc):
            raise
        model, auto = _build(spec, kwargs, "cpu")  # a CPU failure raises the user's own error
        used = "cpu"
        notes.append(f"built on CPU: model could not be built on the meta device ({exc})")
    if auto:
        notes.append("built without pretrained weights: " + ", ".join(f"{k}={v}" for k, v in auto.items())
                     + " (the geometry does not depend on them)")
    if device == "meta" and used == "meta":
        # a module-level model or a cached instance may hold real tensors: describe it on meta anyway
        if any(p.device.type != "meta" for p in model.parameters()):
            try:
                model = model.to("meta")
            except Exception:  # pragma: no cover - exotic modules
                used = "cpu"
                notes.append("model holds CPU tensors that could not be moved to the meta device; analysed on CPU")
    model.eval()
    return LoadedModel(model=model, name=spec, device=used, notes=notes)


def primary_output(output: Any) -> Any:
    """The tensor that is the model's prediction: dict → "out" (else the first tensor), tuple/list → first."""
    torch = _torch()
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        if isinstance(output.get("out"), torch.Tensor):
            return output["out"]
        values = list(output.values())
    elif isinstance(output, (list, tuple)):
        values = list(output)
    else:
        values = [getattr(output, k) for k in ("out", "logits") if hasattr(output, k)]
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
        if isinstance(v, (dict, list, tuple)):
            try:
                return primary_output(v)
            except ModelLoadError:
                continue
    raise ModelLoadError(f"model output of type {type(output).__name__} contains no tensor")

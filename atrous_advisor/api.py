"""The Python API behind ``inspect --json`` and ``lint --json``: the same pydantic results, from Python objects.

Importing this module does not import torch; :func:`inspect_model` imports it when called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from atrous_advisor.errors import InputError
from atrous_advisor.geometry import parse_crop
from atrous_advisor.report.inspect_models import InspectReport
from atrous_advisor.report.lint_models import LintReport

if TYPE_CHECKING:
    import torch

Crop = Union[int, str, tuple[int, int]]


def inspect_model(
    model: Union["torch.nn.Module", str],
    crop: Crop,
    *,
    kwargs: Optional[dict[str, Any]] = None,
    name: Optional[str] = None,
    layers: bool = True,
    field_map: Optional[Union[str, Path]] = None,
    capture: Optional[str] = None,
) -> InspectReport:
    """What ``atrous-advisor inspect MODEL --crop CROP --json`` reports, for a model object or a spec.

    ``model`` is a live ``nn.Module`` (wrapped in DataParallel/DistributedDataParallel or not) or a spec
    as the CLI takes it (``path/file.py[:name]``, ``package.module:callable`` built with ``kwargs``).
    A live model is analysed on a copy on the meta device: no memory, no weights read, and the model's
    parameters, device and training mode are left as they are. ``name`` is the report's ``model`` field
    (default: the class's qualified name). ``layers=False`` leaves out the per-layer field table that
    the CLI's JSON has; ``field_map`` draws the centre output's field to that PNG; ``capture`` is "export"
    or "dispatch" (default: the CLI's, so both report the same).
    """
    from atrous_advisor.graph.loading import _torch

    torch = _torch()
    from atrous_advisor.graph.inspection import inspect_model as inspect_spec

    crop_pair = parse_crop(crop)
    capture_option: dict[str, Any] = {} if capture is None else {"prefer": capture}
    if capture is not None and capture not in ("export", "dispatch"):
        raise InputError(f"capture {capture!r}: expected 'export' or 'dispatch'")
    field_map = Path(field_map) if field_map is not None else None
    if isinstance(model, str):
        report = inspect_spec(model, crop_pair, kwargs, layers=layers,
                              field_map=Path(field_map) if field_map is not None else None, **capture_option)
        return report if name is None else report.model_copy(update={"model": name})
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model: expected a torch.nn.Module or a spec string, got {type(model).__name__}")
    if kwargs:
        raise InputError("kwargs: only used to build a model from a spec; this model is already built")
    from atrous_advisor import live

    inner = live.unwrap(model)
    label = name or f"{type(inner).__module__}.{type(inner).__qualname__}"
    return live.inspect_copy(live.meta_copy(inner), crop_pair, label, layers=layers, field_map=field_map, **capture_option)


def lint_paths(
    paths: Union[str, Path, Sequence[Union[str, Path]]],
    *,
    crop: Optional[Crop] = None,
    select: Optional[Iterable[str]] = None,
    ignore: Optional[Iterable[str]] = None,
    roots: Iterable[Union[str, Path]] = (),
    settings_from: Optional[Union[str, Path]] = None,
) -> LintReport:
    """What ``atrous-advisor lint PATHS --json`` reports (checks only; nothing is written).

    ``crop`` is for configs that carry none (smp, Detectron2 without CROP); ``select``/``ignore`` are rule
    codes or prefixes; ``roots`` are folders also searched for configs inheriting the given files.
    Settings come from the nearest ``[tool.atrous-advisor]`` table at or above ``settings_from`` (default:
    the working directory), as for the CLI. Paths in the report are relative to the working directory.
    """
    from atrous_advisor.configs.engine import lint_paths as run_lint
    from atrous_advisor.configs.result import build_report
    from atrous_advisor.configs.writing import fixable
    from atrous_advisor.configs.settings import check_codes, find_settings

    if isinstance(paths, (str, Path)):
        paths = [paths]
    found = find_settings(Path(settings_from) if settings_from is not None else Path.cwd())
    for key in ("select", "ignore"):
        check_codes(getattr(found, key), f"{found.source}: [tool.atrous-advisor] {key}")
    selected = tuple(c.strip().upper() for c in select) if select is not None else None
    ignored = tuple(c.strip().upper() for c in ignore) if ignore is not None else None
    check_codes(selected or (), "select")
    check_codes(ignored or (), "ignore")
    settings = found.override(crop=parse_crop(crop) if crop is not None else None, select=selected, ignore=ignored)
    run = run_lint([Path(p) for p in paths], settings, roots=[Path(r) for r in roots])
    return build_report(run, fixable(run, settings))

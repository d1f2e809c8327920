"""A synthetic segmentation dataset in which the field of view decides the score.

Every object is the same grey square; what class it belongs to is given only by the colour of a small cue
square placed at a distance from it (by default 0.2 to 0.35 of the image side, in a random direction). The
cue itself is background. A network whose head cannot see that far can find the objects but must guess their
class, so mIoU rises with the head's field of view until the field covers the cue distance — the effect of
the atrous rate, without a real dataset.

``cue_near``/``cue_far`` set that distance range. With ``cue_far = 0.5`` the cues are spread from near the
object out to half the image side — the whole image is the context, not one distance a single rate happens
to hit (docs/validate.md, "the rate law", derives why the best base rate is then expected at r*).

Written in the ``DATA/{train,val}/{images,masks}`` layout that ``validate`` reads: RGB PNG images and
single-channel PNG masks of class indices (0 = background, 1..C−1 = object classes), plus ``synth.json``
describing how it was made.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from atrous_advisor import numbers
from atrous_advisor.files import check_writable
from atrous_advisor.errors import InputError
from atrous_advisor.files import atomic_path, sha256

MANIFEST = "synth.json"
GENERATOR = "atrous-advisor synth"
SPLITS = ("train", "val")
MAX_SIZE = 2048
MAX_CUE_FAR = 0.8


@dataclass(frozen=True)
class SynthSpec:
    size: int = 64
    train: int = 16
    val: int = 8
    classes: int = 5
    seed: int = 0
    cue_near: float = 0.2  # centre-to-centre object-cue distance, as fractions of the image side
    cue_far: float = 0.35
    objects: int | None = None  # most objects per image; None: size // 32, clamped to 2..6

    @property
    def object_side(self) -> int:
        return max(4, self.size // 6)

    @property
    def cue_side(self) -> int:
        return max(2, self.size // 10)

    @property
    def cue_distance(self) -> tuple[float, float]:
        """Centre-to-centre distance (px) between an object and its cue."""
        return (self.cue_near * self.size, self.cue_far * self.size)

    @property
    def objects_per_image(self) -> tuple[int, int]:
        return (1, self.objects if self.objects is not None else max(2, min(6, self.size // 32)))

    def check(self) -> None:
        numbers.check_int(self.seed, "--seed", numbers.SEED)
        if self.size < 32:
            raise InputError(f"--size {self.size}: must be at least 32 px (objects are size/6, cues size/10)")
        if self.size > MAX_SIZE:
            raise InputError(f"--size {self.size}: at most {MAX_SIZE} px (each image is built in memory)")
        if self.classes < 2:
            raise InputError(f"--classes {self.classes}: need at least 2 (background and one object class)")
        if self.classes > len(PALETTE) + 1:
            raise InputError(f"--classes {self.classes}: at most {len(PALETTE) + 1} (one cue colour per object class)")
        if self.train < 1 or self.val < 1:
            raise InputError(f"--train {self.train} / --val {self.val}: each split needs at least one image")
        if not 0 < self.cue_near <= self.cue_far <= MAX_CUE_FAR:
            raise InputError(
                f"--cue-near {self.cue_near:g} / --cue-far {self.cue_far:g}: need 0 < near <= far <= {MAX_CUE_FAR:g} "
                "(fractions of the image side; beyond that an object and its cue rarely both fit in the image)"
            )
        if self.objects is not None and not 1 <= self.objects <= 12:
            raise InputError(f"--objects {self.objects}: must be 1 to 12")


# Saturated, mutually distant cue colours; object class k (1-based) has cue PALETTE[k - 1].
PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (245, 130, 48), (0, 0, 128), (128, 0, 0), (170, 255, 195), (128, 128, 0),
]
OBJECT_GREY = 200


@dataclass
class _Placed:
    centre: tuple[float, float]
    cue_centre: tuple[float, float]
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (top, left, bottom, right), exclusive


def _box(centre: tuple[float, float], side: int) -> tuple[int, int, int, int]:
    top, left = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    return (top, left, top + side, left + side)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _inside(box: tuple[int, int, int, int], size: int) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[2] <= size and box[3] <= size


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _try_place(spec: SynthSpec, rng: np.random.Generator, placed: list[_Placed]) -> _Placed | None:
    """One object with its cue, inside the image, clear of everything placed, and nearer its own cue than any other."""
    # Distance and direction first, then a centre drawn among those that keep object and cue in the image:
    # drawing the centre first would reject most long distances and skew the spread towards short ones.
    distance = rng.uniform(*spec.cue_distance)
    angle = rng.uniform(0, 2 * math.pi)
    offset = (distance * math.sin(angle), distance * math.cos(angle))
    half, cue_half = spec.object_side / 2, spec.cue_side / 2
    centre_axes = []
    for d in offset:
        low, high = max(half, cue_half - d), min(spec.size - half, spec.size - cue_half - d)
        if low > high:
            return None
        centre_axes.append(rng.uniform(low, high))
    centre = (centre_axes[0], centre_axes[1])
    cue = (centre[0] + offset[0], centre[1] + offset[1])
    candidate = _Placed(centre, cue, [_box(centre, spec.object_side), _box(cue, spec.cue_side)])
    if not all(_inside(b, spec.size) for b in candidate.boxes) or _overlaps(candidate.boxes[0], candidate.boxes[1], gap=0):
        return None
    gap = spec.cue_side
    for other in placed:
        if any(_overlaps(a, b, gap) for a in candidate.boxes for b in other.boxes):
            return None
        # Unambiguous: each object's own cue is strictly its nearest one.
        if _distance(centre, other.cue_centre) <= distance or _distance(other.centre, cue) <= _distance(other.centre, other.cue_centre):
            return None
    return candidate


def render(spec: SynthSpec, rng: np.random.Generator, distances: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (image HWC uint8, mask HW uint8) pair; the object-cue distances placed are appended to ``distances``."""
    size = spec.size
    image = rng.integers(70, 140, size=(size, size, 3), dtype=np.int64)  # textured background
    mask: np.ndarray = np.zeros((size, size), dtype=np.uint8)
    low, high = spec.objects_per_image
    wanted = int(rng.integers(low, high + 1))
    placed: list[_Placed] = []
    for _ in range(wanted):
        for _attempt in range(200):
            candidate = _try_place(spec, rng, placed)
            if candidate is not None:
                placed.append(candidate)
                break
    if distances is not None:
        distances += [_distance(item.centre, item.cue_centre) for item in placed]
    for item in placed:
        label = int(rng.integers(1, spec.classes))
        (ot, ol, ob, orr), (ct, cl, cb, cr) = item.boxes
        image[ot:ob, ol:orr] = OBJECT_GREY + rng.integers(-12, 13, size=(ob - ot, orr - ol, 1))
        mask[ot:ob, ol:orr] = label
        image[ct:cb, cl:cr] = PALETTE[label - 1]
    return image.clip(0, 255).astype(np.uint8), mask


def _quantiles(values: list[float]) -> dict:
    """How the distances that were actually placed spread: rejection favours the shorter ones."""
    if not values:
        return {"objects": 0}
    q: np.ndarray = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"objects": len(values), **{k: round(float(v), 1) for k, v in zip(("min", "q25", "median", "q75", "max"), q)}}


def _is_empty(root: Path) -> bool:
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))


_UNHASHED = "written by an interrupted run"  # a name claimed before the run could hash what it wrote


def _claimed(root: Path) -> dict[str, str]:
    """The files an earlier ``synth`` run wrote under ``root``: relative path → sha256 of what it wrote.

    Only a manifest this tool wrote counts. A run writes its manifest twice: first listing the names it is
    about to write (so that a run killed half-way can be rerun with --force), then with their hashes.
    """
    manifest = root / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        return {}
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8")) if not manifest.is_symlink() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        previous = None
    if not isinstance(previous, dict) or previous.get("generator") != GENERATOR:
        raise InputError(f"{manifest} was not written by synth: nothing written; choose a new folder")
    files = previous.get("files")
    hashes = previous.get("sha256")
    if not isinstance(files, list):
        return {}
    if previous.get("complete") is False:
        return {f: _UNHASHED for f in files if isinstance(f, str)}
    if not isinstance(hashes, dict):
        return {}  # written before synth recorded hashes: nothing it lists can be proved to be its own
    return {f: h for f, h in hashes.items() if isinstance(f, str) and isinstance(h, str)}


def _check_replaceable(root: Path, relative: str, claimed: dict[str, str]) -> None:
    """Refuse, before anything is written, to replace or remove a file synth cannot prove it wrote."""
    path = root / relative
    if not path.exists() and not path.is_symlink():
        return
    why = None
    if path.is_symlink() or not path.is_file():
        why = "is not a file synth wrote"
    elif relative not in claimed:
        why = "was not written by synth (it is not in its synth.json)"
    elif claimed[relative] != _UNHASHED and sha256(path.read_bytes()) != claimed[relative]:
        why = "was changed since synth wrote it"
    if why:
        raise InputError(f"{path} {why}: nothing written; move it or choose a new folder")


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_dataset(root: Path, spec: SynthSpec, force: bool = False) -> dict:
    """Write the dataset under ``root`` and return its manifest.

    A non-empty ``root`` is refused unless ``force``. With ``force``, the files an earlier synth run wrote
    (listed in its ``synth.json`` with their hashes, still with that content) are replaced or removed; any
    other file in the way is refused (``InputError``) before anything is written; everything else is kept.
    """
    spec.check()
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} exists and is not a folder")
    counts = {"train": spec.train, "val": spec.val}
    digits = max(4, len(str(max(counts.values()) - 1)))
    names = [
        (split_id, split, f"{index:0{digits}d}")
        for split_id, split in enumerate(SPLITS) for index in range(counts[split])
    ]
    files = [f"{split}/{kind}/{stem}.png" for _, split, stem in names for kind in ("images", "masks")]
    previous: dict[str, str] = {}
    if not _is_empty(root):
        if not force:
            raise InputError(f"{root} exists and is not empty: choose a new folder or pass --force to write into it")
        previous = _claimed(root)
        for relative in sorted(set(files) | set(previous)):
            _check_replaceable(root, relative, previous)
    for relative in sorted(set(previous) - set(files)):  # an earlier run's extra files go
        (root / relative).unlink(missing_ok=True)
    check_writable(root, "DATA")
    try:
        return _write_files(root, spec, names, files)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile
        raise InputError(f"DATA {root}: cannot write: {exc.strerror or exc}") from None


def _write_files(root: Path, spec: SynthSpec, names: list[tuple[int, str, str]], files: list[str]) -> dict:
    manifest = {
        "generator": GENERATOR,
        **asdict(spec),
        "object_side": spec.object_side,
        "cue_side": spec.cue_side,
        "cue_distance": list(spec.cue_distance),
        "palette": [list(c) for c in PALETTE[: spec.classes - 1]],
        "files": files,
    }
    _write(root / MANIFEST, (json.dumps({**manifest, "complete": False}, indent=2) + "\n").encode())
    hashes: dict[str, str] = {}
    placed: list[float] = []  # object-cue distances as drawn, after rejection of what did not fit
    rngs = {split: np.random.default_rng([spec.seed, split_id]) for split_id, split in enumerate(SPLITS)}
    for _, split, stem in names:  # splits are independent streams of one seed
        image, mask = render(spec, rngs[split], placed)
        for kind, data in (("images", _png(image, "RGB")), ("masks", _png(mask, "L"))):
            relative = f"{split}/{kind}/{stem}.png"
            _write(root / relative, data)
            hashes[relative] = sha256(data)
    manifest["cue_distance_placed"] = _quantiles(placed)
    manifest["sha256"] = hashes
    _write(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest

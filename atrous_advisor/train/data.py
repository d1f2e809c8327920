"""Segmentation datasets on disk: discovery, validation and a ``Dataset`` with the usual training augmentation.

Two layouts are understood:

* ``DATA/{train,val}/{images,masks}``: any image format PIL reads; masks are single-channel PNGs whose pixel
  values are class indices (``ignore_index``, 255 by default, marks unlabelled pixels). Images and masks are
  paired by file stem.
* Cityscapes: ``DATA/leftImg8bit/{split}/{city}/*_leftImg8bit.png`` with
  ``DATA/gtFine/{split}/{city}/*_gtFine_labelTrainIds.png`` (19 classes, 255 ignored), as produced by
  cityscapesscripts' ``createTrainIdLabelImgs``.

Every problem is a :class:`~atrous_advisor.errors.DataError` naming the folder or file, never a traceback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from atrous_advisor.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CITYSCAPES_CLASSES = 19
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit"
CITYSCAPES_MASK_SUFFIX = "_gtFine_labelTrainIds"


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path


@dataclass(frozen=True)
class SplitFiles:
    layout: str  # "folders" | "cityscapes"
    split: str
    samples: list[Sample]


def detect_layout(root: Path) -> str:
    """``"cityscapes"`` when ``root/leftImg8bit`` exists, else ``"folders"``; a missing root is an error."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {str(root)!r} does not exist")
    return "cityscapes" if (root / "leftImg8bit").is_dir() else "folders"


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _describe_unmatched(kind: str, stems: Sequence[str], where: Path) -> str:
    shown = ", ".join(sorted(stems)[:3]) + (f" and {len(stems) - 3} more" if len(stems) > 3 else "")
    return f"{len(stems)} {kind} in {where} without a partner (paired by file stem): {shown}"


def _folder_split(root: Path, split: str) -> list[Sample]:
    images_dir, masks_dir = root / split / "images", root / split / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"missing folder {folder} (expected DATA/{{train,val}}/{{images,masks}} or Cityscapes layout)")
    images, masks = _images_in(images_dir), _images_in(masks_dir)
    if not images:
        raise DataError(f"no images in {images_dir}")
    lonely_images = images.keys() - masks.keys()
    if lonely_images:
        raise DataError(_describe_unmatched("images", list(lonely_images), images_dir))
    lonely_masks = masks.keys() - images.keys()
    if lonely_masks:
        raise DataError(_describe_unmatched("masks", list(lonely_masks), masks_dir))
    return [Sample(images[stem], masks[stem]) for stem in sorted(images)]


def _cityscapes_split(root: Path, split: str) -> list[Sample]:
    images_dir, masks_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"missing folder {folder} (Cityscapes layout: leftImg8bit/{split} and gtFine/{split})")
    images = {p.name[: -len(CITYSCAPES_IMAGE_SUFFIX + ".png")]: p for p in sorted(images_dir.glob(f"*/*{CITYSCAPES_IMAGE_SUFFIX}.png"))}
    masks = {p.name[: -len(CITYSCAPES_MASK_SUFFIX + ".png")]: p for p in sorted(masks_dir.glob(f"*/*{CITYSCAPES_MASK_SUFFIX}.png"))}
    if not images:
        raise DataError(f"no *{CITYSCAPES_IMAGE_SUFFIX}.png images under {images_dir}/<city>/")
    if not masks:
        raise DataError(
            f"no *{CITYSCAPES_MASK_SUFFIX}.png masks under {masks_dir}/<city>/ "
            "(create them with cityscapesscripts' createTrainIdLabelImgs)"
        )
    lonely = images.keys() - masks.keys()
    if lonely:
        raise DataError(_describe_unmatched("images", list(lonely), images_dir))
    return [Sample(images[key], masks[key]) for key in sorted(images)]


def discover(root: Path, split: str) -> SplitFiles:
    """List the image/mask pairs of ``split`` ("train" or "val") under ``root``, checking that every file pairs."""
    root = Path(root)
    layout = detect_layout(root)
    samples = _cityscapes_split(root, split) if layout == "cityscapes" else _folder_split(root, split)
    return SplitFiles(layout=layout, split=split, samples=samples)


# A decompression bomb (PIL refuses images past twice Image.MAX_IMAGE_PIXELS) or an image too big for memory is
# a bad file in the dataset, named like any unreadable one.
_UNREADABLE = (OSError, Image.DecompressionBombError, MemoryError)


def _unreadable(kind: str, path: Path, exc: BaseException) -> DataError:
    return DataError(f"{kind} {path} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")


def read_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16"):
                raise DataError(f"mask {path} has mode {img.mode}: expected a single-channel PNG of class indices")
            return np.array(img, dtype=np.int64)
    except _UNREADABLE as exc:  # not an image, truncated, unreadable (PIL's UnidentifiedImageError is an OSError)
        raise _unreadable("mask", path, exc) from None


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except _UNREADABLE as exc:
        raise _unreadable("image", path, exc) from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header."""
    try:
        with Image.open(path) as img:
            return img.size
    except _UNREADABLE as exc:
        raise _unreadable("image", path, exc) from None


def scan_labels(samples: Sequence[Sample], ignore_index: int) -> np.ndarray:
    """Sorted distinct labels (``ignore_index`` excluded) over all masks; also checks mask/image sizes agree."""
    seen: set[int] = set()
    for sample in samples:
        mask = read_mask(sample.mask)
        width, height = image_size(sample.image)
        if mask.shape != (height, width):
            raise DataError(
                f"mask {sample.mask} is {mask.shape[1]}x{mask.shape[0]} but image {sample.image} is {width}x{height}"
            )
        seen.update(int(v) for v in np.unique(mask))
    seen.discard(ignore_index)
    return np.array(sorted(seen), dtype=np.int64)


def check_labels(samples: Sequence[Sample], num_classes: int, ignore_index: int) -> None:
    """Every mask value must be a class index in [0, num_classes) or ``ignore_index``; names the first bad file."""
    for sample in samples:
        values = np.unique(read_mask(sample.mask))
        bad = [int(v) for v in values if v != ignore_index and not 0 <= v < num_classes]
        if bad:
            raise DataError(
                f"mask {sample.mask} has label(s) {bad[:5]} outside 0..{num_classes - 1} "
                f"(--num-classes {num_classes}, --ignore-index {ignore_index})"
            )


def infer_num_classes(splits: Sequence[SplitFiles], ignore_index: int) -> int:
    """Largest label + 1 over every mask (Cityscapes: 19)."""
    if splits and splits[0].layout == "cityscapes":
        return CITYSCAPES_CLASSES
    labels = np.concatenate([scan_labels(s.samples, ignore_index) for s in splits])
    if labels.size == 0:
        raise DataError("every mask pixel is --ignore-index: nothing to train on")
    if labels.min() < 0:
        raise DataError(f"masks hold negative label(s) {labels[labels < 0][:5].tolist()}: class indices start at 0")
    return int(labels.max()) + 1


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def normalize(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 → CHW float normalised with ImageNet statistics (what pretrained backbones expect)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return TF.normalize(tensor, list(IMAGENET_MEAN), list(IMAGENET_STD))


class SegmentationDataset(Dataset):
    """(image CHW float normalised, mask HW long) pairs.

    With ``train=True``: random scale in ``scale_range``, pad (image with zeros after normalisation, mask with
    ``ignore_index``) up to ``crop``, random crop to ``crop`` and random horizontal flip. The randomness of a
    sample depends only on (seed, epoch, index), so a run is reproducible whatever the number of workers or
    processes and resumes exactly; call :meth:`set_epoch` before each epoch. With ``train=False`` images are
    returned whole.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        crop: tuple[int, int],
        train: bool,
        ignore_index: int = 255,
        scale_range: tuple[float, float] = (0.5, 2.0),
        seed: int = 0,
    ) -> None:
        self.samples = list(samples)
        self.crop = crop
        self.train = train
        self.ignore_index = ignore_index
        self.scale_range = scale_range
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[index]
        image = normalize(read_image(sample.image))
        mask = torch.from_numpy(read_mask(sample.mask)).unsqueeze(0)
        if self.train:
            image, mask = self._augment(image, mask, torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, index)))
        return image, mask.squeeze(0).long()

    def _augment(self, image: torch.Tensor, mask: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.scale_range
        factor = low + (high - low) * torch.rand((), generator=rng).item()
        height, width = image.shape[-2:]
        size = [max(1, round(height * factor)), max(1, round(width * factor))]
        image = TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        mask = TF.resize(mask, size, interpolation=TF.InterpolationMode.NEAREST)
        crop_h, crop_w = self.crop
        pad_h, pad_w = max(0, crop_h - size[0]), max(0, crop_w - size[1])
        if pad_h or pad_w:  # [left, top, right, bottom]
            image = TF.pad(image, [0, 0, pad_w, pad_h], fill=0.0)
            mask = TF.pad(mask, [0, 0, pad_w, pad_h], fill=self.ignore_index)
        top = int(torch.randint(0, image.shape[-2] - crop_h + 1, (), generator=rng))
        left = int(torch.randint(0, image.shape[-1] - crop_w + 1, (), generator=rng))
        image = image[..., top : top + crop_h, left : left + crop_w]
        mask = mask[..., top : top + crop_h, left : left + crop_w]
        if torch.rand((), generator=rng).item() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()

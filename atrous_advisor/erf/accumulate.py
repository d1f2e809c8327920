"""Effective receptive field (ERF) of a segmentation network, measured by autograd (paper Eq. 1).

For every image: the gradient of the centre output pixel, summed over classes, with respect to the input;
summed over colour channels; negatives clipped to zero; accumulated over images.

Batching: the centre outputs of the images in one batch are independent samples as long as nothing mixes
samples, so the gradient of their *sum* with respect to the batch is the stack of the per-image gradients —
one backward per batch instead of one per image. BatchNorm in training mode does mix samples (batch
statistics), which is why the model always runs in eval mode here. torch is imported inside the functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

import numpy as np

from atrous_advisor.errors import DataError, InputError, ModelLoadError
from atrous_advisor.report import format as fmt

if TYPE_CHECKING:  # pragma: no cover
    import torch

IntPair = tuple[int, int]
FloatPair = tuple[float, float]


# --------------------------------------------------------------------------------------------------------------
# Inputs


def noise_batches(
    crop: IntPair, images: int, batch_size: int, seed: int = 0, channels: int = 3
) -> Iterator["torch.Tensor"]:
    """``images`` standard-normal images (already "normalised") in batches of at most ``batch_size``.

    The generator is seeded, so the same arguments give the same images whatever the batch size.
    """
    import torch

    _check_counts(images, batch_size)
    gen = torch.Generator().manual_seed(seed)
    all_images = torch.randn((images, channels, *crop), generator=gen)
    for start in range(0, images, batch_size):
        yield all_images[start : start + batch_size]


def fit_to_crop(image: "torch.Tensor", crop: IntPair) -> "torch.Tensor":
    """Centre-crop a CHW image to ``crop``, zero-padding (the normalised mean) an axis that is too short."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    ch, cw = crop
    top, left = max(0, (h - ch) // 2), max(0, (w - cw) // 2)
    image = image[..., top : top + ch, left : left + cw]
    h, w = image.shape[-2:]
    if (h, w) != (ch, cw):
        pad_h, pad_w = ch - h, cw - w
        image = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    return image


def dataset_batches(dataset, crop: IntPair, images: int, batch_size: int) -> Iterator["torch.Tensor"]:
    """Images of a dataset (items ``image`` or ``(image, mask, …)``), fitted to the crop, in batches."""
    import torch

    _check_counts(images, batch_size)
    available = len(dataset)
    if available == 0:
        raise DataError("the dataset has no images")
    count = min(images, available)
    batch: list[torch.Tensor] = []
    for index in range(count):
        item = dataset[index]
        image = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise DataError(f"dataset item {index}: expected a CHW image tensor, got {type(image).__name__}")
        batch.append(fit_to_crop(image.float(), crop))
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def _check_counts(images: int, batch_size: int) -> None:
    if images <= 0:
        raise InputError(f"--images {images}: must be a positive integer")
    if batch_size <= 0:
        raise InputError(f"--batch-size {batch_size}: must be a positive integer")


# --------------------------------------------------------------------------------------------------------------
# Accumulation


@dataclass(frozen=True)
class ErfAccumulation:
    """The accumulated ERF over the input crop and where it was taken."""

    erf: np.ndarray  # (H, W) float64, ≥ 0
    halves: np.ndarray  # (2, H, W): the sums over even- and odd-numbered images (erf = their sum)
    images: int
    output_size: IntPair  # spatial size of the model's primary output
    centre_output: IntPair  # index of the output pixel whose gradient was taken
    centre_input: FloatPair  # that pixel's position in input pixel coordinates
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def centre_pixel(output_size: IntPair, input_size: IntPair) -> tuple[IntPair, FloatPair]:
    """The centre output pixel (index ``size // 2``) and its centre in input pixel coordinates.

    An output at the input's resolution maps index to index; a coarser output of stride s = L / size maps
    index i to i·s, where the features of a conv backbone with 'same' padding ((k_eff − 1)/2) are centred.
    """
    index = (output_size[0] // 2, output_size[1] // 2)
    position = tuple(float(i * L / o) for i, o, L in zip(index, output_size, input_size))
    return index, position  # type: ignore[return-value]


def _out_of_memory(batch: int, device: str) -> InputError:
    hint = f"--batch-size {max(1, batch // 2)}" if batch > 1 else "a smaller --crop or --device cpu"
    return InputError(f"out of memory on {device} with batches of {batch} images: try {hint}")


def accumulate_erf(
    model: "torch.nn.Module",
    batches: Iterable["torch.Tensor"],
    device: str = "cpu",
    progress: Optional[Callable[[int], None]] = None,
) -> ErfAccumulation:
    """Run ``model`` (eval mode, on ``device``) on every batch and accumulate paper Eq. 1 over the images.

    ``progress(n)`` is called after each batch with the number of images it held.
    """
    import torch

    from atrous_advisor.graph.loading import primary_output  # dict → "out", tuple → first: as `inspect` reads it

    model.eval()
    model.to(device)
    # Only the input gradient is needed: parameters that do not require grad skip their weight gradients.
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved_flags:
        p.requires_grad_(False)
    total: Optional[torch.Tensor] = None
    images = 0
    output_size = centre_index = None
    centre_position: FloatPair = (0.0, 0.0)
    input_size: Optional[IntPair] = None
    start = time.perf_counter()
    try:
        with torch.enable_grad():
            for batch in batches:
                x = batch.to(device, dtype=torch.float32, non_blocking=True).requires_grad_(True)
                size = (int(x.shape[-2]), int(x.shape[-1]))
                if input_size is None:
                    input_size = size
                elif size != input_size:
                    raise DataError(f"batch of size {fmt.crop(size)} after batches of {fmt.crop(input_size)}")
                try:
                    out = primary_output(model(x))
                except torch.OutOfMemoryError as exc:
                    raise _out_of_memory(x.shape[0], device) from exc
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise ModelLoadError(
                        f"forward pass failed at {fmt.crop(size)}: {' '.join(str(exc).split())[:300]}"
                    ) from exc
                if out.ndim != 4:
                    raise ModelLoadError(f"the model's output has shape {tuple(out.shape)}, expected (N, classes, H, W)")
                if output_size is None:
                    output_size = (int(out.shape[-2]), int(out.shape[-1]))
                    centre_index, centre_position = centre_pixel(output_size, input_size)
                assert centre_index is not None  # set with output_size by the first batch
                cy, cx = centre_index
                # Σ over the batch and the classes of the centre outputs: each image's input gradient is its own.
                try:
                    (grad,) = torch.autograd.grad(out[:, :, cy, cx].sum(), x)
                except torch.OutOfMemoryError as exc:
                    raise _out_of_memory(x.shape[0], device) from exc
                per_image = grad.sum(dim=1).clamp_(min=0)  # Σ colour channels, then clip negatives (Eq. 1)
                # Two half-maps, even- and odd-numbered images: their difference measures the noise.
                parity = (torch.arange(per_image.shape[0], device=per_image.device) + images) % 2
                halves = torch.stack([per_image[parity == k].sum(dim=0, dtype=torch.float64) for k in (0, 1)])
                total = halves if total is None else total + halves
                images += int(x.shape[0])
                if progress is not None:
                    progress(int(x.shape[0]))
    finally:
        for p, flag in saved_flags:
            p.requires_grad_(flag)
    if total is None:
        raise DataError("no images to measure the ERF on")
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return ErfAccumulation(
        erf=total.sum(dim=0).cpu().numpy(),
        halves=total.cpu().numpy(),
        images=images,
        output_size=output_size,  # type: ignore[arg-type]
        centre_output=centre_index,  # type: ignore[arg-type]
        centre_input=centre_position,
        seconds=seconds,
    )

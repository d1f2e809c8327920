"""The fine-tuning loop behind ``validate``: one model, one seed, a fixed number of optimiser steps, then mIoU.

PyTorch's own pieces do the work: ``DistributedDataParallel`` and ``DistributedSampler`` for several
processes (``torchrun``), ``torch.autocast`` for bf16, ``PolynomialLR`` for DeepLab's poly schedule. A run is
deterministic given its seed: the model is built after seeding, the sample order comes from the sampler's
(seed, epoch) and each sample's augmentation from (seed, epoch, index). That is also what makes a resumed run
(from a periodic checkpoint) continue exactly where the interrupted one stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from atrous_advisor.files import atomic_path
from atrous_advisor.errors import DataError
from atrous_advisor.train.data import SegmentationDataset

Precision = Literal["bf16", "fp32"]


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    batch_size: int  # per process
    lr: float
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = 0.9
    weight_decay: Optional[float] = None  # None: 1e-4 for SGD, 1e-2 for AdamW
    poly_power: float = 0.9
    precision: Precision = "fp32"
    channels_last: bool = False
    eval_mode: Literal["whole", "slide"] = "whole"
    crop: tuple[int, int] = (512, 512)
    num_classes: int = 19
    ignore_index: int = 255
    num_workers: int = 0
    checkpoint_every: int = 0  # optimiser steps between checkpoints; 0: none

    @property
    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 1e-4 if self.optimizer == "sgd" else 1e-2


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a ``torchrun`` job (world_size 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def distributed_from_env() -> Distributed:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Distributed(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(ctx: Distributed, device: torch.device) -> None:
    """Join the process group torchrun set up: NCCL for CUDA devices, gloo on CPU."""
    if ctx.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def logits_of(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's class scores at the input resolution (dict and tuple outputs handled by ``primary_output``)."""
    from atrous_advisor.graph.loading import primary_output

    logits = primary_output(model(images))
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def autocast(device: torch.device, precision: Precision):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.resolved_weight_decay)
    return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.resolved_weight_decay)


@dataclass
class TrainStats:
    steps: int
    images_per_second: float  # all processes together, first step of this process (warm-up) excluded
    seconds: float
    final_loss: float
    resumed_from: int  # step a checkpoint was resumed from (0: fresh)


class Interrupt(Exception):
    """Raised by an ``on_step`` callback to stop training (used by tests to simulate a crash)."""


def _atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


_CHECKPOINT_KEYS = {"tag", "step", "model", "optimizer", "scheduler", "rng"}


def _resume(checkpoint: Path, tag: Optional[dict], model, optimizer, scheduler, device: torch.device,
            ctx: Distributed) -> int:
    """Load a checkpoint of this run (same ``tag``) and return its step; 0 for another run's checkpoint.

    A checkpoint that cannot be read (a power loss, a partial copy) is set aside as ``NAME.corrupt`` with one
    line on stderr, and the run starts again from step 0 instead of failing every resume. It is read whole
    before anything is applied, so a bad file leaves the fresh model untouched.
    """
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not _CHECKPOINT_KEYS <= state.keys():
            raise ValueError("not a validate checkpoint")
    except Exception as exc:  # unpickling and zip errors alike: the file is not usable
        if ctx.is_main:
            aside = checkpoint.with_name(checkpoint.name + ".corrupt")
            os.replace(checkpoint, aside)
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            sys.stderr.write(f"warning: checkpoint {checkpoint} is unreadable ({reason}): set aside as {aside.name}; "
                             "this run starts again from step 0\n")
        return 0
    if state["tag"] != tag:
        return 0
    _unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return int(state["step"])


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def train(
    model: nn.Module,
    dataset: SegmentationDataset,
    settings: TrainSettings,
    seed: int,
    device: torch.device,
    ctx: Distributed = Distributed(),
    checkpoint: Optional[Path] = None,
    checkpoint_tag: Optional[dict] = None,
    on_step: Optional[Callable[[int, float], None]] = None,
) -> TrainStats:
    """Train ``model`` (already on ``device``) for ``settings.steps`` optimiser steps.

    ``checkpoint``: where periodic checkpoints go; if one is there with the same ``checkpoint_tag`` (the run's
    settings), training resumes from it. Only rank 0 writes it. Returns throughput and the last loss.
    """
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.enabled:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=settings.steps, power=settings.poly_power)
    criterion = nn.CrossEntropyLoss(ignore_index=settings.ignore_index)

    start = 0
    if checkpoint is not None and checkpoint.is_file():
        start = _resume(checkpoint, checkpoint_tag, model, optimizer, scheduler, device, ctx)

    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed, drop_last=True)
    steps_per_epoch = len(sampler) // settings.batch_size
    if steps_per_epoch == 0:
        raise DataError(
            f"the train split has {len(dataset)} images: fewer than --batch-size {settings.batch_size} "
            f"× {ctx.world_size} process(es); lower --batch-size"
        )

    model.train()
    step, loss_value = start, float("nan")
    timed_images, timed_seconds, all_images, began = 0, 0.0, 0, time.perf_counter()
    while step < settings.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        # The epoch's sample order, minus the batches a resumed run has already seen.
        order = list(sampler)[skip * settings.batch_size : steps_per_epoch * settings.batch_size]
        loader = DataLoader(
            dataset, batch_size=settings.batch_size, sampler=order, num_workers=settings.num_workers,
            pin_memory=device.type == "cuda", drop_last=True,
        )
        for images, masks in loader:
            tick = time.perf_counter()
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            if settings.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast(device, settings.precision):
                loss = criterion(logits_of(model, images).float(), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_value = loss.item()  # synchronises, so the step's time is real
            if step > start:  # the first step pays for allocation and autotuning
                timed_seconds += time.perf_counter() - tick
                timed_images += images.shape[0] * ctx.world_size
            all_images += images.shape[0] * ctx.world_size
            step += 1
            if checkpoint is not None and settings.checkpoint_every and step % settings.checkpoint_every == 0 and step < settings.steps:
                if ctx.is_main:
                    _atomic_save(
                        {
                            "tag": checkpoint_tag, "step": step, "model": _unwrap(model).state_dict(),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        },
                        checkpoint,
                    )
                ctx.barrier()
            if on_step is not None:
                on_step(step, loss_value)
            if step >= settings.steps:
                break
    seconds = time.perf_counter() - began
    if timed_seconds == 0:  # a single step: nothing after the warm-up to time
        timed_images, timed_seconds = all_images, seconds
    return TrainStats(
        steps=settings.steps,
        images_per_second=timed_images / timed_seconds if timed_seconds > 0 else 0.0,
        seconds=seconds,
        final_loss=loss_value,
        resumed_from=start,
    )


def train_step_probe(model: nn.Module, settings: TrainSettings, batch_size: int, device: torch.device) -> None:
    """One full training step at ``batch_size`` on random data of the crop size: does it fit in memory?"""
    model.train()
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, settings)
    images = torch.randn(batch_size, 3, *settings.crop, device=device)
    if settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = torch.randint(0, settings.num_classes, (batch_size, *settings.crop), device=device)
    with autocast(device, settings.precision):
        loss = F.cross_entropy(logits_of(model, images).float(), masks, ignore_index=settings.ignore_index)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sliding_logits(model: nn.Module, image: torch.Tensor, window: tuple[int, int], num_classes: int) -> torch.Tensor:
    """Average of the logits of overlapping windows (stride two thirds of the window), padded where needed."""
    _, _, height, width = image.shape
    win_h, win_w = min(window[0], height), min(window[1], width)
    stride_h, stride_w = max(1, math.ceil(win_h * 2 / 3)), max(1, math.ceil(win_w * 2 / 3))
    tops = list(range(0, max(height - win_h, 0) + 1, stride_h))
    lefts = list(range(0, max(width - win_w, 0) + 1, stride_w))
    if tops[-1] + win_h < height:
        tops.append(height - win_h)
    if lefts[-1] + win_w < width:
        lefts.append(width - win_w)
    total = image.new_zeros((image.shape[0], num_classes, height, width), dtype=torch.float32)
    count = image.new_zeros((1, 1, height, width), dtype=torch.float32)
    for top in tops:
        for left in lefts:
            patch = image[..., top : top + win_h, left : left + win_w]
            total[..., top : top + win_h, left : left + win_w] += logits_of(model, patch).float()
            count[..., top : top + win_h, left : left + win_w] += 1
    return total / count


@torch.inference_mode()
def evaluate(
    model: nn.Module, dataset: SegmentationDataset, settings: TrainSettings, device: torch.device,
    ctx: Distributed = Distributed(),
) -> torch.Tensor:
    """Confusion matrix [true, predicted] (int64, on CPU) over the whole val split; ranks split the images."""
    model.eval()
    n = settings.num_classes
    confusion = torch.zeros(n * n, dtype=torch.int64, device=device)
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))
    loader = DataLoader(dataset, batch_size=1, sampler=indices, num_workers=settings.num_workers)
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        if settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, settings.precision):
            if settings.eval_mode == "slide":
                logits = _sliding_logits(model, images, settings.crop, n)
            else:
                logits = logits_of(model, images)
        if logits.shape[1] < n:
            raise DataError(f"the model predicts {logits.shape[1]} classes but the data has {n} (set num_classes in --kwargs)")
        predicted = logits[:, :n].argmax(dim=1)
        valid = masks != settings.ignore_index
        confusion += torch.bincount(masks[valid] * n + predicted[valid], minlength=n * n)
    if ctx.enabled:
        dist.all_reduce(confusion)
    return confusion.view(n, n).cpu()


def iou_from_confusion(confusion: torch.Tensor) -> tuple[list[Optional[float]], float]:
    """Per-class IoU (None for a class absent from both labels and predictions) and their mean."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    per_class = [float(tp / u) if u > 0 else None for tp, u in zip(true_positive, union)]
    present = [v for v in per_class if v is not None]
    return per_class, (sum(present) / len(present) if present else 0.0)

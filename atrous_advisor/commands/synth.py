"""``atrous-advisor synth DATA``: write a synthetic dataset in which the field of view decides the score."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from atrous_advisor.commands._common import stdout
from atrous_advisor.numbers import CLASSES, COUNT, OBJECTS, SEED, SIDE, float_option, option, optional_option


def synth(
    data: Path = typer.Argument(..., metavar="DATA", help="Folder to create (DATA/{train,val}/{images,masks}).", show_default=False),
    size: int = typer.Option(64, "--size", metavar="PX", parser=option("--size", SIDE), help="Image side in px (square)."),
    train: int = typer.Option(16, "--train", metavar="N", parser=option("--train", COUNT), help="Training images."),
    val: int = typer.Option(8, "--val", metavar="N", parser=option("--val", COUNT), help="Validation images."),
    classes: int = typer.Option(5, "--classes", metavar="N", parser=option("--classes", CLASSES), help="Classes, background included."),
    seed: int = typer.Option(0, "--seed", metavar="SEED", parser=option("--seed", SEED), help="Random seed; the same seed writes the same files."),
    cue_near: float = typer.Option(0.2, "--cue-near", metavar="FRACTION", parser=float_option("--cue-near", 0.0, 1.0), help="Shortest object-cue distance, as a fraction of the image side."),
    cue_far: float = typer.Option(0.35, "--cue-far", metavar="FRACTION", parser=float_option("--cue-far", 0.0, 1.0), help="Longest object-cue distance, as a fraction of the image side (0.5: cues out to half the image, the whole crop as context)."),
    objects: Optional[int] = typer.Option(None, "--objects", metavar="N", parser=optional_option("--objects", OBJECTS), help="Most objects per image (default: size/32, 2 to 6).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty DATA (replaces an earlier synth run's files, keeps the rest)."),
) -> int:
    """Write a synthetic segmentation set where an object's class is given by a coloured cue at a distance.

    All objects look alike; only the colour of a small cue square --cue-near to --cue-far of the image side
    away (0.2 to 0.35 by default) says which class an object is, so a head whose field of view is too small
    cannot tell them apart.
    """
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    spec = SynthSpec(size=size, train=train, val=val, classes=classes, seed=seed, cue_near=cue_near, cue_far=cue_far, objects=objects)
    manifest = write_dataset(data, spec, force=force)
    low, high = manifest["cue_distance"]
    stdout.print(
        f"wrote {train} train + {val} val images of {size}×{size} px, {classes} classes, to {data} "
        f"(objects {manifest['object_side']} px, cue {low:.0f}–{high:.0f} px away; seed {seed})"
    )
    return 0


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)

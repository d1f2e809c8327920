"""``atrous-advisor synth DATA``: write a synthetic dataset in which the field of view decides the score."""

from __future__ import annotations

from pathlib import Path

import typer

from atrous_advisor.commands._common import stdout
from atrous_advisor.numbers import CLASSES, COUNT, SEED, SIDE, option


def synth(
    data: Path = typer.Argument(..., help="Folder to create (DATA/{train,val}/{images,masks}).", show_default=False),
    size: int = typer.Option(64, "--size", parser=option("--size", SIDE), help="Image side in px (square)."),
    train: int = typer.Option(16, "--train", parser=option("--train", COUNT), help="Training images."),
    val: int = typer.Option(8, "--val", parser=option("--val", COUNT), help="Validation images."),
    classes: int = typer.Option(5, "--classes", parser=option("--classes", CLASSES), help="Classes, background included."),
    seed: int = typer.Option(0, "--seed", parser=option("--seed", SEED), help="Random seed; the same seed writes the same files."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty DATA (replaces an earlier synth run's files, keeps the rest)."),
) -> int:
    """Write a synthetic segmentation set where an object's class is given by a coloured cue at a distance.

    All objects look alike; only the colour of a small cue square 0.2 to 0.35 of the image side away
    says which class an object is, so a head whose field of view is too small cannot tell them apart.
    """
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    spec = SynthSpec(size=size, train=train, val=val, classes=classes, seed=seed)
    manifest = write_dataset(data, spec, force=force)
    low, high = manifest["cue_distance"]
    stdout.print(
        f"wrote {train} train + {val} val images of {size}x{size} px, {classes} classes, to {data} "
        f"(objects {manifest['object_side']} px, cue {low:.0f}-{high:.0f} px away; seed {seed})"
    )
    return 0


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)

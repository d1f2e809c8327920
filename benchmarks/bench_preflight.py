"""The training pre-flight check: what it costs once, and that training after it runs at the same speed.

1. Check time: ``atrous_advisor.integrations._check.preflight`` (meta copy + inspect) on real models at a
   real crop, with the ``dispatch`` capture (the default of the CLI and the integrations) and with ``export``.
   The first call in a process also pays for importing the graph code; it is reported separately.
2. Training speed after the check: a Lightning ``Trainer`` trains the same tiny ASPP net (tests/tiny_seg.py)
   with and without ``AtrousAdvisorCallback``, interleaved over ``--train-repeats`` rounds (alternating
   which goes first); the median seconds per step after the first two steps (the check runs before step 0)
   and their ratio. Whole Trainer runs are noisy on a busy machine, so also:
3. Same process: plain PyTorch steps of that net timed just before and just after a check, repeated.

Models (random weights, nothing downloaded):
  tiny-aspp     tests/tiny_seg.py TinyASPPNet at 128 px
  deeplabv3     torchvision deeplabv3_resnet50 at 512 px
  upernet       transformers UperNet + ConvNeXt (tiny config) at 512 px

    python benchmarks/bench_preflight.py [--repeats 3] [--train-repeats 7] [--steps 30] [--threads 1] [--json]

Results on the development machine: benchmarks/results/bench_preflight-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import tiny_seg  # noqa: E402

from atrous_advisor.integrations._check import preflight  # noqa: E402


def _models():
    import torchvision
    from transformers import ConvNextConfig, UperNetConfig, UperNetForSemanticSegmentation

    backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                              out_features=["stage1", "stage2", "stage3", "stage4"])
    return [
        ("tiny-aspp", tiny_seg.TinyASPPNet(), (128, 128)),
        ("deeplabv3", torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None), (512, 512)),
        ("upernet", UperNetForSemanticSegmentation(UperNetConfig(backbone_config=backbone, hidden_size=16, num_labels=3)), (512, 512)),
    ]


def check_times(repeats: int) -> list[dict]:
    rows = []
    first = None
    for name, model, crop in _models():
        for capture in ("dispatch", "export"):
            times = []
            for _ in range(repeats + (1 if first is None else 0)):
                verdict = preflight(model, crop, capture=capture)
                if first is None:
                    first = {"model": name, "capture": capture, "seconds": round(verdict.seconds, 3)}
                    continue
                times.append(verdict.seconds)
            rows.append({"model": name, "crop": list(crop), "capture": capture, "status": verdict.status,
                         "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)})
    return [{"first_call_in_process": first}, *rows]


def training_overhead(repeats: int, steps: int) -> dict:
    import lightning.pytorch as L
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from atrous_advisor.integrations.lightning import AtrousAdvisorCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = tiny_seg.TinyASPPNet(tiny_seg.GOOD_RATES)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class StepClock(L.Callback):
        def __init__(self):
            self.stamps = []

        def on_train_batch_end(self, *args):
            self.stamps.append(time.perf_counter())

    def run(with_check: bool) -> float:
        clock = StepClock()
        callbacks = [AtrousAdvisorCallback(), clock] if with_check else [clock]
        trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
        data = DataLoader(TensorDataset(*tiny_seg.random_batch(2 * steps)), batch_size=2)
        trainer.fit(Module(), data)
        later = clock.stamps[2:]
        return (later[-1] - later[0]) / (len(later) - 1)

    run(True)  # warm-up: imports, first allocations
    per: dict[str, list[float]] = {"without": [], "with": []}
    for i in range(repeats):  # alternate which goes first, so a drift on a busy machine hits both alike
        for with_check in ((False, True) if i % 2 == 0 else (True, False)):
            per["with" if with_check else "without"].append(run(with_check))
    med = {k: statistics.median(v) for k, v in per.items()}
    return {"steps": steps, "repeats": repeats,
            "median_step_s_without": round(med["without"], 4), "median_step_s_with": round(med["with"], 4),
            "range_step_s_without": [round(min(per["without"]), 4), round(max(per["without"]), 4)],
            "range_step_s_with": [round(min(per["with"]), 4), round(max(per["with"]), 4)],
            "ratio_with_over_without": round(med["with"] / med["without"], 3)}


def same_process(repeats: int, steps: int) -> dict:
    """Plain PyTorch steps of the tiny net just before and just after a check, in one process."""
    import torch.nn.functional as F

    model = tiny_seg.TinyASPPNet(tiny_seg.GOOD_RATES)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = tiny_seg.random_batch(2)

    def step_time() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return (time.perf_counter() - start) / steps

    step_time()
    before, after = [], []
    for _ in range(repeats):
        before.append(step_time())
        preflight(model, (tiny_seg.CROP, tiny_seg.CROP))
        after.append(step_time())
    b, a = statistics.median(before), statistics.median(after)
    return {"steps": steps, "repeats": repeats, "median_step_s_before_check": round(b, 4),
            "median_step_s_after_check": round(a, 4), "ratio_after_over_before": round(a / b, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-repeats", type=int, default=7, help="Rounds of the with/without training runs.")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    machine = {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "threads": args.threads, "torch": torch.__version__,
               "load_average_1min": round(os.getloadavg()[0], 1)}
    result = {"machine": machine, "repeats": args.repeats, "check": check_times(args.repeats),
              "training": training_overhead(args.train_repeats, args.steps),
              "same_process": same_process(args.train_repeats, args.steps)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row in result["check"]:
            print(row)
        print(result["training"])
        print(result["same_process"])
        print(machine)


if __name__ == "__main__":
    main()

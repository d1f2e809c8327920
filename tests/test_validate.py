"""validate: variants, the training loop, results.json, resuming, weights, DDP and bad input — on CPU, in seconds.

Data: the synthetic set at 64 px. Model: examples/tiny_aspp.py (stride 8, ASPP (12, 24, 36) — at 64 px the
8×8 feature map makes every dilated branch a 1×1 conv; the suggested rates are (1, 2, 3)).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from atrous_advisor.errors import InputError, ModelLoadError  # noqa: E402
from atrous_advisor.graph.heads import HeadSite  # noqa: E402
from atrous_advisor.report.validate_models import ValidateReport, VariantResult  # noqa: E402
from atrous_advisor.train import loop  # noqa: E402
from atrous_advisor.train.data import SegmentationDataset, discover  # noqa: E402
from atrous_advisor.train.synth import SynthSpec, write_dataset  # noqa: E402
from atrous_advisor.train.validate import (  # noqa: E402
    ValidateRequest, largest_fitting_batch, parse_sweep, plan_variants, run_validation,
)

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_aspp.py")
KWARGS = {"num_classes": 5}
CROP = (64, 64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, SynthSpec(size=64, train=8, val=4, classes=5, seed=0), force=True)
    return root


def request(data, out, **changes):
    settings = dict(model=TINY, kwargs=KWARGS, data=data, crop=CROP, out=out, steps=3, batch_size=4, device="cpu")
    settings.update(changes)
    return ValidateRequest(**settings)


def cli_env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return env


# --------------------------------------------------------------------------------------------- planning


def aspp_head(rates=((12, 12), (24, 24), (36, 36)), stride=(8, 8)):
    branches = [f"aspp.branches.{i + 1}.0" for i in range(len(rates))]
    return HeadSite("aspp", "aspp", branches, list(rates), [], True, (64, 64), stride)


def test_plan_current_suggested_and_sweep_merges_duplicates():
    # 512 px at stride 8: r* = (512 − 32) / 48 = 10 → (10, 20, 30)
    variants, notes = plan_variants([aspp_head()], (512, 512), sweep=parse_sweep("9:12"))
    names = [v.name for v in variants]
    assert names == ["current", "suggested", "rate-9", "rate-11"]
    by_name = {v.name: v for v in variants}
    assert by_name["suggested"].heads[0].rates == [(10, 10), (20, 20), (30, 30)]
    assert by_name["suggested"].also == ("rate-10",) and by_name["current"].also == ("rate-12",)
    assert any("rate-12 is the same configuration as current" in n for n in notes)


def test_plan_non_square_crop_gives_per_axis_rates():
    variants, _ = plan_variants([aspp_head(stride=(16, 16))], (512, 1024))
    # r* = (512 − 32)/96 = 5 and (1024 − 32)/96 = 10.33 → 10
    assert variants[1].heads[0].rates == [(5, 10), (10, 20), (15, 30)]


def test_plan_ppm_caps_scales_and_keeps_the_branch_count():
    head = HeadSite("ppm", "decoder.psp", [f"decoder.psp.blocks.{i}.pool.0" for i in range(4)], [], [1, 2, 3, 6], True, (32, 32), (8, 8))
    variants, _ = plan_variants([head], (256, 256), scale_sets=[(1, 2, 4, 8)])
    # 256 px with 120 px minimum cells: scales capped at 2
    assert [(v.name, v.heads[0].scales) for v in variants] == [
        ("current", [1, 2, 3, 6]), ("suggested", [1, 2, 2, 2]), ("scales-1-2-4-8", [1, 2, 4, 8]),
    ]
    with pytest.raises(InputError, match="4 pooling branches"):
        plan_variants([head], (256, 256), scale_sets=[(1, 2)])
    with pytest.raises(InputError, match="--sweep applies to ASPP"):
        plan_variants([head], (256, 256), sweep=[4])


def test_plan_without_a_head_is_an_error():
    fcn = HeadSite("fcn", "classifier", ["classifier.0"], [(6, 6)], [], False, (8, 8), (8, 8))
    with pytest.raises(ModelLoadError, match=r"no ASPP or PPM head .*fcn classifier"):
        plan_variants([fcn], CROP)


@pytest.mark.parametrize("text, values", [("8:12", [8, 9, 10, 11, 12]), ("8:16:4", [8, 12, 16]), ("6, 9,12", [6, 9, 12])])
def test_parse_sweep(text, values):
    assert parse_sweep(text) == values


@pytest.mark.parametrize("text", ["16:8", "a:b", "0:2", "1:2:0", "1:2:3:4"])
def test_parse_sweep_rejects(text):
    with pytest.raises(InputError, match="--sweep"):
        parse_sweep(text)


# --------------------------------------------------------------------------------------------- training


def test_two_variants_results_contract(data, tmp_path):
    out = tmp_path / "out"
    report = run_validation(request(data, out))
    written = json.loads((out / "results.json").read_text())
    assert written == json.loads(report.model_dump_json())
    assert ValidateReport.model_validate(written).variants == report.variants  # the file round-trips
    assert written["device"] == "cpu" and written["world_size"] == 1 and written["complete"] is True
    assert written["settings"]["steps"] == 3 and written["settings"]["batch_size"] == 4
    variants = {v["name"]: v for v in written["variants"]}
    assert list(variants) == ["current", "suggested"]
    assert variants["current"]["rates"] == [[12, 12], [24, 24], [36, 36]]
    assert variants["suggested"]["rates"] == [[1, 1], [2, 2], [3, 3]]
    for v in variants.values():
        assert 0.0 <= v["miou"] <= 1.0
        assert len(v["per_class_iou"]) == 5
        assert v["seed"] == 0 and v["steps"] == 3 and v["images_per_second"] > 0
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("variant,rates,scales,seed,steps,miou") and len(rows) == 3
    assert (out / "miou_vs_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["current-seed0.json", "suggested-seed0.json"]
    assert not list(out.rglob(".*tmp*")) and not list(out.glob("checkpoints/*"))


def test_repeats_give_mean_and_std_and_a_seed_reproduces_its_run(data, tmp_path):
    repeated = run_validation(request(data, tmp_path / "a", repeats=2, steps=2))
    alone = run_validation(request(data, tmp_path / "b", seed=1, steps=2))  # the second repeat on its own
    for both, second in zip(repeated.variants, alone.variants):
        assert both.seeds == [0, 1] and both.miou_std is not None and both.complete
        assert both.miou == pytest.approx(sum(r.miou for r in both.runs) / 2)
        assert both.runs[1].miou == second.runs[0].miou
        assert both.runs[1].final_loss == second.runs[0].final_loss


def test_weights_load_under_every_variant(data, tmp_path):
    from atrous_advisor.graph.loading import load_model

    torch.manual_seed(123)
    trained = load_model(TINY, KWARGS, device="cpu").model
    checkpoint = tmp_path / "ckpt.pth"
    # a DDP-style full checkpoint: {"state_dict": {"module.…": tensor}}
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, checkpoint)
    report = run_validation(request(data, tmp_path / "out", weights=checkpoint, steps=1))
    assert [v.name for v in report.variants] == ["current", "suggested"] and report.complete
    # The runs started from the checkpoint, not from the seed-0 initialisation they would have without it.
    plain = run_validation(request(data, tmp_path / "plain", steps=1))
    for loaded, fresh in zip(report.variants, plain.variants):
        assert loaded.runs[0].final_loss != fresh.runs[0].final_loss

    wrong = load_model(TINY, {"num_classes": 3}, device="cpu").model
    torch.save(wrong.state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ModelLoadError, match=r"does not fit the model: .*with another shape \(e\.g\. classifier"):
        run_validation(request(data, tmp_path / "out2", weights=tmp_path / "wrong.pth", steps=1))


def test_checkpoint_resume_continues_exactly(data, tmp_path):
    """A run interrupted after step 3 resumes from its step-2 checkpoint and ends where an uninterrupted run ends."""
    from atrous_advisor.graph.loading import load_model

    settings = loop.TrainSettings(steps=4, batch_size=4, lr=0.01, crop=CROP, num_classes=5, checkpoint_every=2)
    files = discover(data, "train").samples

    def fresh():
        loop.seed_everything(0)
        return load_model(TINY, KWARGS, device="cpu").model, SegmentationDataset(files, CROP, train=True, seed=0)

    model, dataset = fresh()
    loop.train(model, dataset, settings, 0, torch.device("cpu"))
    reference = model.state_dict()

    def crash(step, loss):
        if step == 3:
            raise loop.Interrupt

    checkpoint, tag = tmp_path / "run.pt", {"run": "a"}
    model, dataset = fresh()
    with pytest.raises(loop.Interrupt):
        loop.train(model, dataset, settings, 0, torch.device("cpu"), checkpoint=checkpoint, checkpoint_tag=tag, on_step=crash)
    model, dataset = fresh()
    stats = loop.train(model, dataset, settings, 0, torch.device("cpu"), checkpoint=checkpoint, checkpoint_tag=tag)
    assert stats.resumed_from == 2
    for key, value in model.state_dict().items():
        assert torch.allclose(value.float(), reference[key].float(), atol=1e-6), key

    model, dataset = fresh()  # another tag (other settings): the checkpoint is not used
    assert loop.train(model, dataset, settings, 0, torch.device("cpu"), checkpoint=checkpoint, checkpoint_tag={"run": "b"}).resumed_from == 0


def test_iou_from_confusion():
    confusion = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])  # rows: truth; class 2 never seen
    per_class, miou = loop.iou_from_confusion(confusion)
    assert per_class == [pytest.approx(3 / 4), pytest.approx(2 / 3), None]
    assert miou == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_sliding_window_matches_whole_image_for_a_window_sized_image(data, tmp_path):
    report = run_validation(request(data, tmp_path / "slide", eval_mode="slide", steps=1))
    whole = run_validation(request(data, tmp_path / "whole", eval_mode="whole", steps=1))
    assert [v.miou for v in report.variants] == pytest.approx([v.miou for v in whole.variants])


def test_out_of_memory_probe_halves_until_it_fits():
    tried = []

    def try_batch(batch):
        tried.append(batch)
        if batch > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")

    assert largest_fitting_batch(try_batch, 16) == 2 and tried == [8, 4, 2]
    assert largest_fitting_batch(lambda b: (_ for _ in ()).throw(torch.OutOfMemoryError("x")), 4) is None


def test_other_settings_in_the_same_out_are_refused(data, tmp_path):
    out = tmp_path / "out"
    run_validation(request(data, out, steps=1))
    with pytest.raises(InputError, match="made with other settings"):
        run_validation(request(data, out, steps=2))


def test_out_that_is_a_file_or_someone_elses_folder_is_refused(data, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(InputError, match="is not a folder"):
        run_validation(request(data, a_file, steps=1))
    theirs = tmp_path / "project"
    theirs.mkdir()
    (theirs / "results.json").write_text('{"mine": true}')
    with pytest.raises(InputError, match="no validate runs in it"):
        run_validation(request(data, theirs, steps=1))
    assert (theirs / "results.json").read_text() == '{"mine": true}' and a_file.read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert run_validation(request(data, tmp_path / "empty", steps=1)).complete  # empty, and then its own: both fine
    assert run_validation(request(data, tmp_path / "empty", steps=1)).complete


# --------------------------------------------------------------------------------------------- CLI


def validate_args(data, out, steps):
    return ["validate", TINY, "--data", str(data), "--crop", "64", "--kwargs", json.dumps(KWARGS), "--steps", str(steps),
            "--batch-size", "4", "--device", "cpu", "--out", str(out)]


def test_resume_after_a_killed_run(data, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "atrous_advisor", *validate_args(data, out, steps=60), "--checkpoint-every", "5"]
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = out / "runs" / "current-seed0.json"
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.exists(), process.stderr.read().decode()[-2000:]
    assert not (out / "runs" / "suggested-seed0.json").exists(), "the run finished before it could be killed"
    finished_at = first.stat().st_mtime_ns

    rerun = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert "skipping current-seed0: finished earlier" in rerun.stderr
    assert first.stat().st_mtime_ns == finished_at
    report = json.loads((out / "results.json").read_text())
    assert report["complete"] and [v["name"] for v in report["variants"]] == ["current", "suggested"]


def test_ddp_two_cpu_processes_under_torchrun(data, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "atrous_advisor", *validate_args(data, out, steps=2), "--json"]
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert report["world_size"] == 2 and report["complete"]
    assert json.loads(done.stdout) == report  # printed once, by rank 0
    assert [v["name"] for v in report["variants"]] == ["current", "suggested"]
    assert all(0 <= v["miou"] <= 1 for v in report["variants"])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_bad_input_exit_2_with_one_line(run_cli, data, tmp_path):
    args = lambda d, *extra: validate_args(d, tmp_path / "out", 1) + list(extra)  # noqa: E731
    assert "does not exist" in one_line_error(run_cli(*args(tmp_path / "nowhere")))

    unmatched = tmp_path / "unmatched"
    write_dataset(unmatched, SynthSpec(train=2, val=1))
    (unmatched / "val" / "masks" / "0000.png").rename(unmatched / "val" / "masks" / "other.png")
    assert "without a partner" in one_line_error(run_cli(*args(unmatched)))

    line = one_line_error(run_cli(*args(data, "--num-classes", "3")))
    assert "outside 0..2" in line and "--num-classes 3" in line
    assert "--sweep" in one_line_error(run_cli(*args(data, "--sweep", "9:3")))
    assert "--scales applies to PPM" in one_line_error(run_cli(*args(data, "--scales", "1,2,3,6")))
    assert "--optimizer" in one_line_error(run_cli(*args(data, "--optimizer", "lamb")))
    assert "--checkpoint-every '-1': out of range" in one_line_error(run_cli(*args(data, "--checkpoint-every", "-1")))
    if not torch.cuda.is_available():
        assert "CUDA is not available" in one_line_error(run_cli(*args(data, "--device", "cuda")))
    line = one_line_error(run_cli(*validate_args(data, tmp_path / "out", 1)[:4] + ["--crop", "64", "--device", "cpu", "--kwargs", '{"num_classes": 2}']))
    assert "predicts 2 classes but the data has 5" in line


def test_cityscapes_labels_outside_the_19_train_ids_are_refused(run_cli, tmp_path):
    """The Cityscapes class count is fixed, not read from the masks, so the masks must still be checked: a
    labelIds mask (33 = bicycle) instead of a labelTrainIds one is one line, not a loss-function traceback."""
    import numpy as np
    from PIL import Image

    for split in ("train", "val"):
        for i in range(4):
            frame = f"aachen_{i:06d}_000019"
            image = tmp_path / "cs" / "leftImg8bit" / split / "aachen" / f"{frame}_leftImg8bit.png"
            mask = tmp_path / "cs" / "gtFine" / split / "aachen" / f"{frame}_gtFine_labelTrainIds.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            mask.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
            labels = np.zeros((64, 64), np.uint8)
            labels[:8] = 33 if (split, i) == ("val", 3) else 18
            Image.fromarray(labels, "L").save(mask)
    args = ["validate", TINY, "--data", str(tmp_path / "cs"), "--crop", "64", "--kwargs", '{"num_classes": 19}',
            "--steps", "1", "--batch-size", "2", "--device", "cpu", "--out", str(tmp_path / "out")]
    line = one_line_error(run_cli(*args))
    assert "aachen_000003_000019_gtFine_labelTrainIds.png has label(s) [33] outside 0..18" in line
    assert not (tmp_path / "out").exists()


def test_weights_that_do_not_fit_and_a_too_large_batch_are_refused_before_any_run(run_cli, data, tmp_path):
    from atrous_advisor.graph.loading import load_model

    torch.save(load_model(TINY, {"num_classes": 3}, device="cpu").model.state_dict(), tmp_path / "wrong.pth")
    result = run_cli(*validate_args(data, tmp_path / "out", 1), "--weights", str(tmp_path / "wrong.pth"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "does not fit the model" in result.stderr
    result = run_cli(*validate_args(data, tmp_path / "out", 1), "--batch-size", "9")  # 8 train images
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "fewer than --batch-size 9" in result.stderr
    assert not (tmp_path / "out").exists()


def test_synth_cli(run_cli, tmp_path):
    result = run_cli("synth", str(tmp_path / "d"), "--size", "64", "--train", "2", "--val", "1", "--classes", "3", "--seed", "4")
    assert result.exit_code == 0 and "wrote 2 train + 1 val images" in result.stdout
    assert "--force" in one_line_error(run_cli("synth", str(tmp_path / "d"), "--train", "2"))


def test_commands_do_not_import_torch_at_module_level():
    import ast

    for name in ("validate", "synth"):
        source = (ROOT / "atrous_advisor" / "commands" / f"{name}.py").read_text()
        top = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = {getattr(n, "module", None) for n in top} | {a.name for n in top for a in n.names}
        assert not any(str(m).startswith(("torch", "atrous_advisor.train", "atrous_advisor.graph")) for m in modules if m), name


# --------------------------------------------------------------------------------------------- real models


@pytest.mark.slow
def test_smp_pspnet_scale_variants(data, tmp_path):
    """PPM path end to end: smp PSPNet (resnet18 encoder, stride 8), scales (1, 2, 3, 6) against a user set."""
    pytest.importorskip("segmentation_models_pytorch")
    report = run_validation(request(data, tmp_path / "psp", model=str(ROOT / "examples" / "smp_pspnet.py"),
                                    kwargs={"encoder_name": "resnet18", "classes": 5}, steps=1,
                                    scale_sets=((1, 2, 4, 8),)))
    # 64 px is below 2 × the 120 px minimum cell: the only change the rule could suggest is global pooling alone,
    # which measured worse (docs/validate.md), so the suggestion is the current set and is trained once
    assert [(v.name, v.scales, v.also) for v in report.variants] == [
        ("current", [1, 2, 3, 6], ["suggested"]), ("scales-1-2-4-8", [1, 2, 4, 8], []),
    ]
    assert all(v.rates is None and 0 <= v.miou <= 1 for v in report.variants)
    assert (tmp_path / "psp" / "miou_vs_rate.png").is_file()


@pytest.mark.slow
def test_torchvision_deeplabv3(data, tmp_path):
    """torchvision DeepLabV3-ResNet50 (stride 8, rates 12/24/36): at 64 px the suggested rates are (1, 2, 3)."""
    report = run_validation(request(data, tmp_path / "tv", model="torchvision.models.segmentation:deeplabv3_resnet50",
                                    kwargs={"weights": None, "weights_backbone": None, "num_classes": 5},
                                    steps=1, batch_size=2))
    assert [v.rates for v in report.variants] == [[(12, 12), (24, 24), (36, 36)], [(1, 1), (2, 2), (3, 3)]]
    assert report.complete


def test_best_is_the_unique_top_score():
    from atrous_advisor.train.validate import _best

    def variant(name, miou):
        return VariantResult(name=name, rates=None, scales=None, base_rate=None, heads=[], also=[], miou=miou,
                             miou_std=None, per_class_iou=[], seed=0, seeds=[0], steps=1, images_per_second=1.0,
                             complete=True, runs=[])

    assert _best([variant("current", 0.4), variant("suggested", 0.6)]) == "suggested"
    assert _best([variant("current", 0.19), variant("suggested", 0.19)]) is None
    assert _best([]) is None


def test_sliding_windows_cover_a_larger_image_exactly():
    """With a per-pixel model, averaging overlapping windows must give the whole-image logits everywhere."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 5, 1)
    image = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        stitched = loop._sliding_logits(model, image, (32, 32), 5)
        assert torch.allclose(stitched, model(image), atol=1e-6)

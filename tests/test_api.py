"""The public Python API: the same pydantic results as the CLI's --json, a live model left untouched, and
``import atrous_advisor`` without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import atrous_advisor as aa
from atrous_advisor.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def test_import_and_torch_free_api_work_with_torch_blocked():
    """With torch unimportable: the package imports, rate/ppm/lint run, inspect_model names the missing extra."""
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, NoTorch())
        import atrous_advisor as aa
        from atrous_advisor.errors import MissingExtraError
        assert aa.advise_rates(512, 8).suggested_rates == [(10, 10), (20, 20), (30, 30)]
        assert aa.advise_ppm(512, 8).ok in (True, False)
        report = aa.lint_paths({str(FIXTURES / "mmseg1x")!r})
        assert isinstance(report, aa.LintReport) and report.configs
        assert aa.InspectReport.__name__ == "InspectReport"
        try:
            aa.inspect_model("examples/tiny_aspp.py", 128)
        except MissingExtraError as exc:
            print("missing:", exc)
        assert "torch" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env=os.environ, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "missing: this command needs PyTorch" in result.stdout


def test_advise_rates_is_the_rate_json(run_cli):
    result = run_cli("rate", "--crop", "512x1024", "--stride", "8", "--rates", "6,12,18", "--json")
    assert result.exit_code == 0
    api = aa.advise_rates((512, 1024), 8, current=[6, 12, 18])
    assert json.loads(api.model_dump_json()) == json.loads(result.stdout)


def test_lint_paths_is_the_lint_json(run_cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    target = str(FIXTURES / "mmseg1x")
    result = run_cli("lint", target, "--json")
    report = aa.lint_paths(target)
    assert json.loads(report.model_dump_json()) == json.loads(result.stdout)
    assert any(c.diagnostics for c in report.configs)
    with pytest.raises(InputError, match="no rule code starts with it"):
        aa.lint_paths(target, select=["AA9"])


@pytest.mark.slow
def test_inspect_model_on_a_live_model_matches_the_spec_and_leaves_it_alone(run_cli):
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import tiny_aspp
    finally:
        sys.path.remove(str(EXAMPLES))
    model = tiny_aspp.build_model()
    model.train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    live = aa.inspect_model(torch.nn.DataParallel(model), "128x192")

    assert model.training and all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())
    result = run_cli("inspect", str(EXAMPLES / "tiny_aspp.py"), "--crop", "128x192", "--json")
    cli = json.loads(result.stdout)
    ours = json.loads(live.model_dump_json())
    assert ours.pop("model") == f"{type(model).__module__}.{type(model).__qualname__}"
    cli.pop("model")
    assert ours == cli
    assert live.aspp and live.device == "meta"


@pytest.mark.slow
def test_inspect_model_rejects_what_is_not_a_model():
    with pytest.raises(InputError, match="expected a torch.nn.Module"):
        aa.inspect_model(object(), 128)
    with pytest.raises(InputError, match="crop"):
        aa.inspect_model("examples/tiny_aspp.py", "0x5")


@pytest.mark.slow
def test_inspect_model_unwraps_mmengine_distributed_data_parallel(tmp_path):
    """A model wrapped for distributed training (a real process group of one, gloo on CPU) is inspected as
    the model inside; the wrapper and the model stay as they were."""
    import torch
    import torch.distributed as dist

    mmengine_model = pytest.importorskip("mmengine.model")
    import tiny_seg

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = tiny_seg.TinyASPPNet()
        before = tiny_seg.snapshot(model)
        wrapped = mmengine_model.MMDistributedDataParallel(module=model)
        report = aa.inspect_model(wrapped, tiny_seg.CROP)
        assert report.model.endswith("TinyASPPNet")
        assert [h.rates for h in report.aspp] == [[(r, r) for r in tiny_seg.BAD_RATES]]
        assert tiny_seg.unchanged(model, before) and wrapped.module is model
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_a_model_on_the_gpu_costs_no_gpu_memory():
    import torch
    import torchvision

    model = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None).cuda()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated()
    report = aa.inspect_model(model, 512, capture="dispatch")
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() == held  # nothing was allocated on the GPU, not even briefly
    assert report.aspp and next(model.parameters()).is_cuda

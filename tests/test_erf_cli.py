"""`atrous-advisor erf` end to end: detection → ERF → files and JSON; --compare; --data; bad input (exit 2)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

EXAMPLES = Path(__file__).parents[1] / "examples"
TINY = EXAMPLES / "tiny_aspp.py"


def _ok_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_star_of_the_detected_aspp_matches_2nrs_within_5_percent(run_cli, tmp_path):
    """examples/tiny_aspp.py at rates (4, 8, 12): stride-8 stem of three 3×3 convs (field 15 px), so blobs
    32 px apart stay separate. Detected rates → predicted span 2·12·8 = 192 px on a 256 px crop."""
    out = tmp_path / "erf.png"
    data = _ok_json(run_cli("erf", f"{TINY}:build_model", "--crop", "256", "--kwargs", '{"rates": [4, 8, 12]}',
                            "--images", "16", "--batch-size", "8", "--out", str(out), "--json"))
    assert data["aspp"]["rates"] == [[4, 4], [8, 8], [12, 12]] and data["aspp"]["stride"] == [8, 8]
    assert data["predicted_span"] == [192, 192]
    for measured, predicted in zip(data["measured_span"], data["predicted_span"]):
        assert measured is not None and abs(measured - predicted) <= 0.05 * predicted
    assert data["current"]["taps_outside_crop"] == 0
    assert data["images"] == 16 and data["device"] == "cpu" and data["source"] == "noise"
    assert set(data["gaussian"]) == {"centre", "centre_shift", "sigma", "method", "moment_sigma"}
    # The fit locks onto the centre blob; the moments see the whole star, which reaches ±96 px.
    assert all(m > 2 * f for m, f in zip(data["gaussian"]["moment_sigma"], data["gaussian"]["sigma"]))
    assert data["measured_extent"] is not None and data["png"] == str(out)
    erf = np.load(tmp_path / "erf.npy")
    assert erf.shape == (256, 256) and erf.min() >= 0 and erf.max() > 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_shows_current_and_suggested_rates(run_cli, tmp_path):
    """DeepLab's (12, 24, 36) at a 128 px crop and stride 8: every outer tap reads padding; r* = 2."""
    out = tmp_path / "cmp.png"
    data = _ok_json(run_cli("erf", str(TINY), "--crop", "128", "--images", "8", "--compare", "--log",
                            "--out", str(out), "--json"))
    current, suggested = data["current"], data["suggested"]
    assert current["rates"] == [[12, 12], [24, 24], [36, 36]] and current["predicted_span"] == [576, 576]
    assert current["taps_outside_crop"] == 24  # the whole star but the centre
    assert suggested["rates"] == [[2, 2], [4, 4], [6, 6]] and suggested["predicted_span"] == [96, 96]
    assert suggested["taps_outside_crop"] == 0
    assert not np.array_equal(np.load(tmp_path / "cmp.npy"), np.load(tmp_path / "cmp.suggested.npy"))
    assert data["log_scale"] and out.is_file()


def test_existing_outputs_are_kept_unless_force(run_cli, tmp_path):
    out = tmp_path / "erf.png"
    out.write_bytes(b"the user's own picture")
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--images", "2", "--out", str(out)))
    assert str(out) in line and "--force" in line
    assert out.read_bytes() == b"the user's own picture" and not (tmp_path / "erf.npy").exists()
    result = run_cli("erf", str(TINY), "--crop", "64", "--images", "2", "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "erf.npy").is_file()


def test_data_mode_on_a_synthetic_dataset(run_cli, tmp_path):
    from atrous_advisor.train.synth import SynthSpec, write_dataset

    write_dataset(tmp_path / "data", SynthSpec(size=64, train=2, val=3, classes=3, seed=1))
    data = _ok_json(run_cli("erf", str(TINY), "--crop", "96", "--data", str(tmp_path / "data"), "--images", "5",
                            "--out", str(tmp_path / "d.png"), "--json"))
    assert data["source"] == "data" and data["images"] == 3  # the val split has 3 images (64 px, zero-padded)
    assert any("only 3" in w for w in data["warnings"])


def test_data_mode_uses_train_only_without_a_val_split(run_cli, tmp_path):
    import shutil

    from atrous_advisor.train.synth import SynthSpec, write_dataset

    root = tmp_path / "data"
    write_dataset(root, SynthSpec(size=64, train=2, val=3, classes=3, seed=1))
    (root / "val" / "masks" / "0002.png").unlink()  # a broken val split is an error, not a reason to use train
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--data", str(root), "--images", "5",
                                   "--out", str(tmp_path / "a.png")))
    assert "without a partner" in line and "val" in line
    shutil.rmtree(root / "val")  # no val split at all: the train images are used
    data = _ok_json(run_cli("erf", str(TINY), "--crop", "64", "--data", str(root), "--images", "5",
                            "--out", str(tmp_path / "b.png"), "--json"))
    assert data["source"] == "data" and data["images"] == 2


def test_model_without_aspp_has_no_prediction(run_cli, tmp_path):
    model = tmp_path / "plain.py"
    model.write_text(
        "from torch import nn\n\n"
        "def build_model():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))\n"
    )
    result = run_cli("erf", str(model), "--crop", "32", "--images", "2", "--out", str(tmp_path / "p.png"), "--json")
    data = _ok_json(result)
    assert data["aspp"] is None and data["predicted_span"] is None
    assert data["measured_extent"] == [5, 5]  # two 3×3 convs: a 5×5 field
    assert "no ASPP head detected" in result.stderr
    line = _one_line_error(run_cli("erf", str(model), "--crop", "32", "--compare", "--out", str(tmp_path / "q.png")))
    assert "--compare needs an ASPP head" in line


def test_bad_input_exits_2_with_one_line(run_cli, tmp_path):
    out = str(tmp_path / "e.png")
    assert "no such file" in _one_line_error(run_cli("erf", str(tmp_path / "missing.py"), "--crop", "64", "--out", out))
    assert "crop" in _one_line_error(run_cli("erf", str(TINY), "--crop", "64x", "--out", out))
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--noise", "--data", str(tmp_path), "--out", out))
    assert "--data and --noise" in line
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--data", str(tmp_path / "nowhere"), "--out", out))
    assert "nowhere" in line and "no such folder" in line
    assert "PNG" in _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--out", str(tmp_path / "e.jpg")))
    assert "--images" in _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--images", "0", "--out", out))
    assert "--device" in _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--device", "tpu", "--out", out))
    assert not list(tmp_path.glob("e.*"))


def test_stderr_off_a_terminal_holds_only_the_error_line(run_cli, tmp_path):
    result = run_cli("erf", str(TINY), "--crop", "64", "--images", "0", "--out", str(tmp_path / "e.png"))
    assert result.exit_code == 2 and result.stderr == "atrous-advisor: error: --images '0': out of range: expected a count from 1 to 10000000\n"
    result = run_cli("erf", str(TINY), "--crop", "64", "--images", "2", "--out", str(tmp_path / "e.png"), "--json")
    assert result.exit_code == 0 and result.stderr == ""


def test_erf_command_does_not_import_torch_at_module_level():
    import ast

    source = (Path(__file__).parents[1] / "atrous_advisor" / "commands" / "erf.py").read_text()
    top = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {getattr(n, "module", None) for n in top}
    assert not any(str(n).startswith(("torch", "atrous_advisor.graph", "atrous_advisor.train")) for n in names if n)


def test_weights_are_loaded_and_must_fit(run_cli, tmp_path):
    import importlib.util

    import torch

    from atrous_advisor.erf.accumulate import accumulate_erf, noise_batches

    spec = importlib.util.spec_from_file_location("tiny_aspp_example", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(123)
    trained = module.build_model()
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "ckpt.pth")
    result = run_cli("erf", str(TINY), "--crop", "64", "--images", "2", "--weights", str(tmp_path / "ckpt.pth"),
                     "--out", str(tmp_path / "w.png"))
    assert result.exit_code == 0, result.output
    expected = accumulate_erf(trained, noise_batches((64, 64), 2, 8, seed=0), device="cpu").erf
    np.testing.assert_allclose(np.load(tmp_path / "w.npy"), expected, rtol=1e-5, atol=1e-9)

    torch.save(module.build_model(num_classes=7).state_dict(), tmp_path / "other.pth")
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--weights", str(tmp_path / "other.pth"),
                                   "--out", str(tmp_path / "c.png")))
    assert "--weights" in line and "does not fit" in line
    line = _one_line_error(run_cli("erf", str(TINY), "--crop", "64", "--weights", str(tmp_path / "none.pth"),
                                   "--out", str(tmp_path / "c.png")))
    assert "no such file" in line


def test_same_seed_same_map_for_a_randomly_initialised_model(run_cli, tmp_path):
    maps = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        result = run_cli("erf", str(TINY), "--crop", "64", "--images", "2", "--seed", seed,
                         "--out", str(tmp_path / f"{name}.png"))
        assert result.exit_code == 0, result.output
        maps.append(np.load(tmp_path / f"{name}.npy"))
    np.testing.assert_array_equal(maps[0], maps[1])
    assert not np.array_equal(maps[0], maps[2])

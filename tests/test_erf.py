"""ERF measurement (paper Eq. 1) on small analytic networks, and the map measurements on synthetic maps."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torchvision.models.segmentation.deeplabv3 import ASPP  # noqa: E402

from atrous_advisor.errors import InputError  # noqa: E402
from atrous_advisor.erf.accumulate import accumulate_erf, fit_to_crop, noise_batches  # noqa: E402
from atrous_advisor.erf.render import ErfPanel, render_erf_png  # noqa: E402
from atrous_advisor.erf.run import check_outputs, output_paths  # noqa: E402
from atrous_advisor.erf.star import fit_gaussian, measure_star, nonzero_extent, predict_star  # noqa: E402


class StarNet(nn.Module):
    """A shallow stem and torchvision's ASPP: the star is sharp even with random weights.

    Stem: 3×3 conv stride 2 → BN → ReLU → 3×3 conv stride 2 → BN → ReLU: output stride 4, field 7 px.
    Head: torchvision ``ASPP`` (1×1 branch, one 3×3 branch per rate, image pooling, concat, projection),
    a 1×1 classifier, bilinear upsampling back to the input.
    A branch of rate (rh, rw) reads features ± (rh, rw) away, i.e. ± (4·rh, 4·rw) px: the outermost blobs of
    the centre output's ERF are 2·(largest rate)·4 px apart — 2·n·r·s with n = 3.
    """

    stride = (4, 4)

    def __init__(self, rates=((3, 3), (6, 6), (9, 9)), width: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.rates = [tuple(r) for r in rates]
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        )
        self.aspp = ASPP(width, self.rates, 2 * width)
        self.classifier = nn.Conv2d(2 * width, classes, 1)

    def forward(self, x):
        logits = self.classifier(self.aspp(self.stem(x)))
        return {"out": F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)}


class PlainStack(nn.Module):
    """Four 3×3 convs with ReLUs, no upsampling. Hand-computed field (per axis, jump j, field r):

    conv1 k3 s1 p1:        r = 3,              j = 1
    conv2 k3 s2 p1:        r = 3 + 2·1 = 5,    j = 2
    conv3 k3 d2 p2 (k 5):  r = 5 + 4·2 = 13,   j = 2
    conv4 k3 s1 p1:        r = 13 + 2·2 = 17,  j = 2
    The first feature's field is centred on input pixel 0 (every conv pads (k_eff − 1)/2), so output pixel
    i is centred on input 2·i: at 64 px the centre output (32×32 map, index 16) sees input rows and columns
    32 − 8 … 32 + 8.
    """

    field = 17
    centre = 32

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, 5, 3, padding=1),
        )

    def forward(self, x):
        return self.body(x)


def _star_erf(model, crop, images=16, batch_size=8):
    torch.manual_seed(0)
    return accumulate_erf(model, noise_batches(crop, images, batch_size, seed=1), device="cpu")


@pytest.mark.parametrize(
    "rates, crop",
    [
        (((3, 3), (6, 6), (9, 9)), (128, 128)),  # span 72 px
        (((3, 4), (6, 8), (9, 12)), (128, 160)),  # anisotropic: span 72 × 96 px
    ],
)
def test_star_span_matches_the_analytic_span_within_5_percent(rates, crop):
    torch.manual_seed(0)
    model = StarNet(rates)
    acc = _star_erf(model, crop)
    star = predict_star(model.rates, model.stride, acc.centre_input)
    assert star.span == (2 * rates[-1][0] * 4, 2 * rates[-1][1] * 4)
    measured = measure_star(acc.erf, acc.centre_input, model.stride)
    for axis, (m, p) in enumerate(zip(measured.span, star.span)):
        assert m is not None, f"no outer blobs found on axis {axis}"
        assert abs(m - p) <= 0.05 * p, (axis, m, p)
    # The outermost blobs lie on both sides of the centre, one per side, where the largest rate reads.
    for positions, centre, reach in zip((measured.rows.positions, measured.cols.positions), acc.centre_input, star.span):
        assert min(positions) < centre < max(positions)
        assert abs((centre - min(positions)) - reach / 2) <= 0.05 * reach


def test_plain_conv_stack_stays_inside_its_analytic_field():
    torch.manual_seed(0)
    acc = accumulate_erf(PlainStack(), noise_batches((64, 64), 8, 4), device="cpu")
    assert acc.output_size == (32, 32)
    assert acc.centre_input == (PlainStack.centre, PlainStack.centre)
    extent = nonzero_extent(acc.erf)
    half = (PlainStack.field - 1) // 2
    y0, x0, y1, x1 = extent.box
    for lo, hi in ((y0, y1), (x0, x1)):
        assert PlainStack.centre - half <= lo and hi <= PlainStack.centre + half
    # Not vacuous: with ReLUs and noise inputs, the field is covered (almost) entirely.
    assert min(extent.size) >= PlainStack.field - 2


def test_batched_equals_one_image_at_a_time_and_eval_mode_is_forced():
    """One backward of the summed centre outputs gives each image its own gradient — in eval mode.

    The model is handed over in training mode, where BatchNorm would mix the images of a batch; the
    accumulation must switch it to eval mode, so batch size cannot change the map.
    """
    torch.manual_seed(0)
    model = StarNet().train()
    flags = [p.requires_grad for p in model.parameters()]
    batched = accumulate_erf(model, noise_batches((64, 64), 6, 6), device="cpu").erf
    single = accumulate_erf(model, noise_batches((64, 64), 6, 1), device="cpu").erf
    assert batched.max() > 0
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-7 * batched.max())
    assert not model.training
    assert [p.requires_grad for p in model.parameters()] == flags  # restored after the measurement


def test_negative_gradients_are_clipped_per_image_before_accumulating():
    """Eq. 1 clips each image's channel-summed gradient: a linear model with a negative weight shows nothing."""
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0, -3.0]).view(1, 3, 1, 1))
    acc = accumulate_erf(conv, noise_batches((9, 9), 3, 3), device="cpu")
    assert acc.erf.max() == 0.0
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0, 0.5]).view(1, 3, 1, 1))
    acc = accumulate_erf(conv, noise_batches((9, 9), 3, 3), device="cpu")
    assert acc.erf[4, 4] == pytest.approx(3 * 2.5) and acc.erf.sum() == pytest.approx(3 * 2.5)


def _blob_map(shape, centres, sigma=2.0, heights=None):
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    out = np.zeros(shape)
    for i, (cy, cx) in enumerate(centres):
        h = 1.0 if heights is None else heights[i]
        out += h * np.exp(-0.5 * (((ys - cy) / sigma) ** 2 + ((xs - cx) / sigma) ** 2))
    return out


def test_measure_star_finds_the_outermost_blobs_on_a_synthetic_star():
    centre = (50.0, 60.0)
    offsets_y, offsets_x = (7, 14, 21), (9, 18, 27)
    blobs = [centre]
    for oy, ox in zip(offsets_y, offsets_x):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    blobs.append((centre[0] + dy * oy, centre[1] + dx * ox))
    erf = _blob_map((100, 120), blobs, heights=[5.0] + [0.4] * (len(blobs) - 1))  # centre 12.5× brighter
    measured = measure_star(erf, centre, stride=(2, 2))
    assert measured.span[0] == pytest.approx(42.0, abs=0.3)
    assert measured.span[1] == pytest.approx(54.0, abs=0.3)


def test_a_span_needs_an_outer_blob_on_each_side_of_the_centre():
    erf = _blob_map((64, 96), [(32, 48), (32, 72)], heights=[1.0, 0.5])  # centre and one blob to the right
    measured = measure_star(erf, (32, 48), stride=(2, 2))
    assert measured.cols.positions == pytest.approx((48.0, 72.0), abs=0.2)
    assert measured.span == (None, None)


def test_blobs_seen_in_only_one_half_of_the_images_are_noise():
    """Star blobs show up in the even- and the odd-numbered images alike; a noise bump does not."""
    broad = _blob_map((96, 96), [(48, 48)], sigma=12.0)  # a deep backbone's Gaussian-like ERF
    star = _blob_map((96, 96), [(48, 24), (48, 72), (24, 48), (72, 48)], sigma=3.0, heights=[0.6] * 4)
    bump_a = _blob_map((96, 96), [(48, 8), (8, 48)], sigma=3.0, heights=[0.3] * 2)
    bump_b = _blob_map((96, 96), [(48, 88), (88, 48)], sigma=3.0, heights=[0.3] * 2)
    halves = np.stack([broad / 2 + star / 2 + bump_a, broad / 2 + star / 2 + bump_b])
    erf = halves.sum(axis=0)
    blind = measure_star(erf, (48, 48), stride=(4, 4))
    # Without the halves, the bumps near ±40 (pulled inward a little by the slope they sit on) pass for blobs.
    assert all(70 < span < 82 for span in blind.span)
    aware = measure_star(erf, (48, 48), stride=(4, 4), halves=halves)
    assert aware.span == pytest.approx((48.0, 48.0), abs=3.0)  # the real blobs at ±24 (slope-biased inward)


def test_accumulation_keeps_even_and_odd_halves():
    torch.manual_seed(0)
    acc = accumulate_erf(PlainStack(), noise_batches((32, 32), 5, 2), device="cpu")
    assert acc.halves.shape == (2, 32, 32)
    np.testing.assert_allclose(acc.halves.sum(axis=0), acc.erf)


def test_measure_star_ignores_a_flat_floor_and_reports_missing_blobs_as_none():
    erf = np.full((64, 64), 0.5)  # e.g. an image-pooling branch alone: uniform, no blob
    erf[32, 32] += 1.0
    measured = measure_star(erf, (32, 32), stride=(1, 1))
    assert measured.span == (None, None)


def test_nonzero_extent_and_threshold():
    erf = np.zeros((40, 50))
    erf[10:21, 5:30] = 0.001
    erf[14:17, 15:18] = 1.0
    assert nonzero_extent(erf).size == (11, 25)
    assert nonzero_extent(erf).box == (10, 5, 20, 29)
    assert nonzero_extent(erf, threshold=0.01).size == (3, 3)
    assert nonzero_extent(np.zeros((4, 4))) is None


def test_gaussian_fit_recovers_centre_shift_and_sigma():
    erf = _blob_map((96, 96), [(40.0, 52.0)], sigma=1.0)
    ys, xs = np.mgrid[0:96, 0:96].astype(float)
    erf = np.exp(-0.5 * (((ys - 40.0) / 6.0) ** 2 + ((xs - 52.0) / 9.0) ** 2))
    fit = fit_gaussian(erf, centre=(48.0, 48.0))
    assert fit.method == "curve_fit"
    assert fit.centre_shift == pytest.approx((-8.0, 4.0), abs=0.01)
    assert fit.sigma == pytest.approx((6.0, 9.0), rel=0.01)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 5)])
def test_gaussian_fit_on_a_map_with_fewer_pixels_than_parameters_falls_back_to_moments(shape):
    erf = np.zeros(shape)
    erf[0, -1] = 2.0
    fit = fit_gaussian(erf, centre=(0.0, 0.0))
    assert fit.method == "moments" and fit.centre == (0.0, shape[1] - 1) and fit.sigma == (0.0, 0.0)


def test_fit_to_crop_centre_crops_and_pads():
    big = torch.arange(10 * 12, dtype=torch.float32).view(1, 10, 12)
    assert torch.equal(fit_to_crop(big, (4, 6)), big[:, 3:7, 3:9])
    small = torch.ones(3, 4, 4)
    padded = fit_to_crop(small, (8, 7))
    assert padded.shape == (3, 8, 7)
    assert padded.sum() == small.sum() and padded[:, 2:6, 1:5].sum() == small.sum()


def test_outputs_are_never_overwritten_without_force(tmp_path):
    paths = output_paths(tmp_path / "erf.png", compare=True)
    assert paths == {
        "png": tmp_path / "erf.png",
        "current": tmp_path / "erf.npy",
        "suggested": tmp_path / "erf.suggested.npy",
    }
    check_outputs(paths, force=False)  # nothing there yet
    (tmp_path / "erf.npy").write_bytes(b"keep me")
    with pytest.raises(InputError, match="--force"):
        check_outputs(paths, force=False)
    check_outputs(paths, force=True)
    with pytest.raises(InputError, match="PNG"):
        output_paths(tmp_path / "erf.jpg", compare=False)


def test_png_shows_taps_outside_the_crop(tmp_path):
    from PIL import Image

    erf = _blob_map((64, 64), [(32, 32)])
    star = predict_star([(6, 6), (12, 12)], (4, 4), (32.0, 32.0))
    outside = [t for t in star.taps() if not (0 <= t.y <= 63 and 0 <= t.x <= 63)]
    assert len(outside) == 8  # the rate-12 ring: ±48 px around the centre of a 64 px crop
    path = render_erf_png([ErfPanel(erf, "test", (32.0, 32.0), star)], tmp_path / "e.png", log=True)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 300


def test_out_of_memory_names_a_batch_size_that_may_fit():
    class Hungry(nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(InputError, match="--batch-size 4"):
        accumulate_erf(Hungry(), noise_batches((16, 16), 8, 8), device="cpu")


def test_star_analysis_needs_no_torch():
    """A saved .npy map can be analysed where torch is not installed: erf.star imports numpy/scipy only."""
    code = "import sys, atrous_advisor.erf.star, atrous_advisor.erf; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

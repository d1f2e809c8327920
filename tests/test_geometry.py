"""The analytic core against the paper's numbers, the worked examples of docs/formulas.md and brute-force checks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

import atrous_advisor as aa
from atrous_advisor.errors import InputError
from conftest import read_reference


@pytest.mark.parametrize("row", read_reference("paper_guideline_table.csv"), ids=lambda r: f"{r['crop_size']}-s{r['output_stride']}")
def test_paper_guideline_table_to_two_decimals(row):
    crop, stride = int(row["crop_size"]), int(row["output_stride"])
    rh, rw = aa.optimal_base_rate(crop, stride)
    assert rh == rw
    assert f"{rh:.2f}" == row["rate"]


@pytest.mark.parametrize("row", read_reference("paper_experiments.csv"), ids=lambda r: f"{r['dataset']}-{r['crop_size']}")
def test_paper_best_measured_rate_is_rounded_optimum(row):
    base = aa.suggested_base_rate(int(row["crop_size"]), int(row["output_stride"]))
    assert base == (int(row["best_rate"]),) * 2


def test_deeplab_rule_and_extrapolation_flag():
    assert aa.default_base_rate(16) == ((6, 6), False)
    assert aa.default_base_rate(8) == ((12, 12), False)
    assert aa.default_base_rate(32) == ((3, 3), True)
    assert aa.default_base_rate(4) == ((24, 24), True)


def test_feature_map_is_ceil():
    assert aa.feature_map(769, 8) == (97, 97)
    assert aa.feature_map(513, 8) == (65, 65)
    assert aa.feature_map((512, 1024), 16) == (32, 64)


def test_design_example_rate_36_on_64_map():
    """docs/formulas.md §5: d = 36 on a 64×64 map: extent 73 (114% of F), 61% of taps in padding."""
    info = aa.branch_info(36, 64)
    assert info.kernel_extent == (73, 73)
    assert round(info.coverage[0] * 100) == 114
    assert round(info.padding_fraction * 100) == 61
    assert not info.degenerate


def test_round_half_up_is_exact():
    # (L − 32) / 48 = 10.5 exactly at L = 536: halves go up, not to even.
    assert aa.optimal_base_rate(536, 8) == (10.5, 10.5)
    assert aa.suggested_base_rate(536, 8) == (11, 11)
    # Never below 1, however small the crop.
    assert aa.suggested_base_rate(40, 16) == (1, 1)


def test_non_square_crop_gives_per_axis_rates_and_one_int():
    optimal = aa.optimal_base_rate((512, 1024), 8)
    assert optimal == (10.0, pytest.approx(20.6667, abs=1e-4))
    assert aa.suggested_rates((512, 1024), 8) == [(10, 21), (20, 42), (30, 63)]
    # Geometric mean of 10 and 20.67 is 14.4: the FOV overshoots H and undershoots W by the same factor.
    assert aa.single_int_rate(optimal) == 14


def _padding_brute_force(d: int, fh: int, fw: int) -> float:
    """Enumerate every output position and every 3×3 tap; count the taps outside the map."""
    outside = total = 0
    for y, x in itertools.product(range(fh), range(fw)):
        for dy, dx in itertools.product((-d, 0, d), repeat=2):
            total += 1
            outside += not (0 <= y + dy < fh and 0 <= x + dx < fw)
    return outside / total


@pytest.mark.parametrize("d,fh,fw", [(1, 4, 4), (3, 5, 9), (12, 16, 16), (7, 7, 20), (40, 8, 12)])
def test_padding_fraction_matches_brute_force(d, fh, fw):
    assert aa.padding_fraction(d, (fh, fw)) == pytest.approx(_padding_brute_force(d, fh, fw), abs=1e-12)


def test_ppm_cells_and_suggestion():
    analysis = aa.analyse_ppm(512, 8)
    six = analysis.cells[-1]
    assert six.scale == 6 and round(six.cell_pixels[0]) == 85 and six.below_min_cell
    assert analysis.suggested_scales == (1, 2, 3, 4)
    big = aa.analyse_ppm(769, 8)
    assert round(big.cells[-1].cell_features[0], 1) == 16.2  # F = 97
    assert not any(c.below_min_cell for c in big.cells)


def test_ppm_scale_above_feature_map_is_redundant():
    analysis = aa.analyse_ppm(64, 16, scales=(1, 2, 6))  # F = 4
    assert [c.redundant for c in analysis.cells] == [False, False, True]
    assert 6 not in analysis.suggested_scales and analysis.suggested_scales[0] == 1


def test_analyse_rates_fov():
    analysis = aa.analyse_rates([12, 24, 36], 512, 8)
    assert analysis.fov == (2 * 36 * 8 + 32,) * 2 == (608, 608)
    assert analysis.feature_map == (64, 64)


@pytest.mark.parametrize(
    "call",
    [
        lambda: aa.optimal_base_rate(0, 8),
        lambda: aa.optimal_base_rate(512, -8),
        lambda: aa.optimal_base_rate(512, 8, margin=600),
        lambda: aa.optimal_base_rate(512, 8, branches=0),
        lambda: aa.padding_fraction(0, 64),
        lambda: aa.analyse_ppm(512, 8, scales=(1, 0)),
        lambda: aa.parse_crop("512x"),
        lambda: aa.parse_crop("abc"),
        lambda: aa.parse_crop("1x2x3"),
    ],
)
def test_bad_values_raise_input_error(call):
    with pytest.raises(InputError):
        call()


crops = st.integers(min_value=40, max_value=4096)
strides = st.sampled_from([1, 2, 4, 8, 16, 32])


@given(crops, crops, strides)
def test_optimum_is_monotone_in_crop(a, b, s):
    small, large = sorted((a, b))
    assert aa.optimal_base_rate(small, s)[0] <= aa.optimal_base_rate(large, s)[0]
    assert aa.suggested_base_rate(small, s)[0] <= aa.suggested_base_rate(large, s)[0]


@given(crops, strides)
def test_square_crop_gives_equal_axes(crop, s):
    rh, rw = aa.optimal_base_rate(crop, s)
    assert rh == rw
    assert all(h == w for h, w in aa.suggested_rates(crop, s))


@given(st.integers(1, 200), st.integers(1, 200), st.integers(1, 300), st.integers(1, 300))
def test_padding_fraction_bounded_and_monotone_in_rate(d1, d2, fh, fw):
    small, large = sorted((d1, d2))
    p_small, p_large = aa.padding_fraction(small, (fh, fw)), aa.padding_fraction(large, (fh, fw))
    assert 0.0 <= p_small <= p_large <= 1.0


@given(st.integers(1, 200), st.integers(1, 200), st.integers(1, 200))
def test_degenerate_exactly_when_rate_reaches_feature_map(d, fh, fw):
    info = aa.branch_info(d, (fh, fw))
    assert info.degenerate == (d >= fh and d >= fw)
    if info.degenerate:
        # Only the centre tap is ever valid: 8 of 9 taps read padding, i.e. exactly a 1×1 convolution.
        assert info.padding_fraction == pytest.approx(8 / 9)


@given(crops, strides)
def test_suggested_fov_is_within_one_rate_step_of_crop(crop, s):
    if crop <= aa.DEFAULT_MARGIN:
        return
    (r, _), optimal = aa.suggested_base_rate(crop, s), aa.optimal_base_rate(crop, s)[0]
    fov = aa.fov(3 * r, s)[0]
    if optimal >= 1:
        assert abs(fov - crop) <= 3 * s  # rounding r* by at most 0.5 moves the FOV by at most 2·3·0.5·s


def test_min_cell_rule_never_cuts_the_pyramid_to_global_pooling_alone():
    """Below 2·min-cell the rule would leave only scale 1; that measured ~12 mIoU points worse than (1, 2, 3, 6)
    at 80 and 112 px (docs/validate.md, PPM), so only scales above F are capped there."""
    from atrous_advisor import advise_ppm
    from atrous_advisor.geometry import collapses_to_global, suggest_scales

    assert collapses_to_global(80) and collapses_to_global(239) and not collapses_to_global(240)
    assert suggest_scales((1, 2, 3, 6), 80, fmap=(20, 20)) == (1, 2, 3, 6)
    assert suggest_scales((1, 2, 3, 6), 40, fmap=(5, 5)) == (1, 2, 3, 5)  # scale 6 > F still repeats features
    assert suggest_scales((1, 2, 3, 6), 512, fmap=(64, 64)) == (1, 2, 3, 4)  # the rule applies at real crops
    report = advise_ppm(80, 4)
    assert not report.ok and report.suggested_scales == [1, 2, 3, 6] and report.snippets == {}
    assert report.verdict.startswith("Warning:") and "no change suggested" in report.verdict

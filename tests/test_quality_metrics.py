"""The fast HAAQI and HASPI v2 against pyclarity's, end to end and stage by stage.

Signals are short (0.5..1.1 s) so the whole file runs in well under a minute; the
fast kernels compile once into numba's on-disk cache on a clean checkout.
"""

from __future__ import annotations

import numpy as np
import pytest
from clarity.evaluator.haaqi import compute_haaqi
from clarity.evaluator.haspi import eb, ebm
from clarity.evaluator.haspi import haspi_v2 as pyclarity_haspi_v2
from clarity.utils.audiogram import (AUDIOGRAM_MILD, AUDIOGRAM_MODERATE, AUDIOGRAM_REF,
                                     Audiogram)
from scipy.signal import butter, lfilter

from code.evaluation.quality import cepstrum, modulation, segments
from code.evaluation.quality.alignment import input_align
from code.evaluation.quality.ear import alignment_delays, ear_model
from code.evaluation.quality.haaqi import haaqi
from code.evaluation.quality.haspi import haspi_v2
from code.evaluation.quality.legacy_rng import add_standard_normal, skip_standard_normal
from code.evaluation.quality.pairwise import pairwise_sum, pairwise_sum_columns
from code.evaluation.quality.workspace import Workspace

HEARING_LOSS = np.array([15.0, 20.0, 30.0, 40.0, 50.0, 60.0])


def music(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A harmonic tone with vibrato and level changes plus some low-passed noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(196 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 30) if k * 196 < rate / 2.2)
    b, a = butter(2, 0.1)
    signal = tone * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + lfilter(b, a, rng.standard_normal(len(t)))
    return 0.05 * signal / np.sqrt(np.mean(signal ** 2))


def processed_version(reference: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """Delayed, low-passed, softly clipped and noisier: what a hearing aid might give."""
    rng = np.random.default_rng(seed)
    b, a = butter(3, 5000 / (rate / 2))
    out = 0.3 * np.tanh(lfilter(b, a, np.roll(reference, int(0.004 * rate))) / 0.3)
    return out + 0.002 * rng.standard_normal(len(reference))


@pytest.fixture(scope="module")
def pyclarity_compiled():
    """pyclarity's ear model once on a short signal: its numba helpers compile (not cached
    on disk, about 3 s), here rather than inside the first comparison."""
    signal = music(0.2, 24000, 99)
    eb.ear_model(signal, 24000, signal, 24000, HEARING_LOSS, 1, 65.0)


def resampled(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    t_out = np.arange(int(len(signal) * rate_out / rate_in)) / rate_out
    return np.interp(t_out, np.arange(len(signal)) / rate_in, signal)


# --- end to end ---------------------------------------------------------------------------

def haaqi_cases():
    rate = 44100
    ref = music(1.0, rate, 0)
    yield "mild, eq 1", processed_version(ref, rate, 1), ref, rate, rate, AUDIOGRAM_MILD, 1
    quiet_start = music(1.1, rate, 2)
    quiet_start[: int(0.3 * rate)] = 0.0  # silence at the start of both
    proc = processed_version(quiet_start, rate, 3)
    proc[: int(0.3 * rate)] = 0.0
    yield "no loss, eq 2, leading silence", proc, quiet_start, rate, rate, AUDIOGRAM_REF, 2
    ref16 = music(1.0, 16000, 4)  # reference at 16 kHz, processed at 22.05 kHz and longer
    proc22 = processed_version(resampled(music(1.0, 16000, 4), 16000, 22050), 22050, 5)
    proc22 = np.concatenate((proc22, 0.01 * np.ones(3000)))
    yield "moderate, rates and lengths differ", proc22, ref16, 22050, 16000, AUDIOGRAM_MODERATE, 1


@pytest.mark.parametrize("case", list(haaqi_cases()), ids=lambda c: c[0])
def test_haaqi_matches_pyclarity(case, pyclarity_compiled):
    _, proc, ref, proc_sr, ref_sr, audiogram, eq = case
    np.random.seed(7)
    expected = compute_haaqi(proc, ref, proc_sr, ref_sr, audiogram, equalisation=eq, level1=80.0)
    np.random.seed(7)
    got = haaqi(proc, ref, proc_sr, ref_sr, audiogram, equalisation=eq, level1=80.0)
    assert got == pytest.approx(expected, abs=1e-6)
    assert 0.0 < got < 1.0


@pytest.mark.parametrize("audiogram,ref_seconds", [(AUDIOGRAM_REF, 1.0), (AUDIOGRAM_MODERATE, 0.8)],
                         ids=["no loss", "moderate, longer processed"])
def test_haspi_matches_pyclarity_with_the_same_draws(audiogram, ref_seconds, pyclarity_compiled):
    rate = 22050
    ref = music(ref_seconds, rate, 10)
    proc = processed_version(music(1.0, rate, 10), rate, 11)
    np.random.seed(3)
    expected, expected_raw = pyclarity_haspi_v2(ref, rate, proc, rate, audiogram)
    expected_next = np.random.standard_normal(3)  # the generator's state afterwards
    np.random.seed(3)
    got, raw = haspi_v2(ref, rate, proc, rate, audiogram)
    assert got == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(raw, expected_raw, atol=1e-9)
    np.testing.assert_array_equal(np.random.standard_normal(3), expected_next)


# --- stages -------------------------------------------------------------------------------

@pytest.mark.parametrize("itype", [0, 1, 2])
def test_ear_model_matches_pyclarity(itype, pyclarity_compiled):
    rate = 32000
    ref = music(0.5, rate, 20)
    proc = processed_version(ref, rate, 21)
    np.random.seed(5)
    expected = eb.ear_model(ref, rate, proc, rate, HEARING_LOSS, itype, 70.0)
    np.random.seed(5)
    got = ear_model(ref, rate, proc, rate, HEARING_LOSS, itype, 70.0)
    names = ["reference_db", "reference_bm", "processed_db", "processed_bm", "reference_sl",
             "processed_sl", "sample_rate"]
    for name, want in zip(names, expected):
        np.testing.assert_allclose(getattr(got, name), want, rtol=0, atol=1e-9, err_msg=name)


def test_ear_model_with_a_partial_group_of_lanes_matches_pyclarity(pyclarity_compiled):
    # 20 bands: one full group of SIMD lanes and one partly used
    rate = 24000
    ref = music(0.4, rate, 24)
    proc = processed_version(ref, rate, 25)
    np.random.seed(6)
    expected = eb.ear_model(ref, rate, proc, rate, HEARING_LOSS, 1, 70.0, nchan=20)
    np.random.seed(6)
    got = ear_model(ref, rate, proc, rate, HEARING_LOSS, 1, 70.0, nchan=20)
    for name, want in zip(["reference_db", "reference_bm", "processed_db", "processed_bm"],
                          expected):
        assert getattr(got, name).shape == (20, len(want[0]))
        np.testing.assert_allclose(getattr(got, name), want, rtol=0, atol=1e-9, err_msg=name)


def test_a_reused_workspace_gives_the_values_of_fresh_arrays():
    rate = 24000
    long_ref = music(0.6, rate, 26)
    long_proc = processed_version(long_ref, rate, 27)
    short_ref, short_proc = long_ref[:rate // 3].copy(), long_proc[:rate // 3].copy()
    workspace = Workspace()
    for ref, proc in [(long_ref, long_proc), (short_ref, short_proc), (long_ref, long_proc)]:
        np.random.seed(9)
        fresh = ear_model(ref, rate, proc, rate, HEARING_LOSS, 1, 65.0)
        np.random.seed(9)
        reused = ear_model(ref, rate, proc, rate, HEARING_LOSS, 1, 65.0, workspace=workspace)
        for name in ["reference_db", "reference_bm", "processed_db", "processed_bm"]:
            np.testing.assert_array_equal(getattr(reused, name), getattr(fresh, name))
    # HAAQI keeps its arrays in this thread's workspace: the same score called again
    np.random.seed(3)
    first = haaqi(long_proc, long_ref, rate, rate, AUDIOGRAM_MILD)
    haaqi(short_proc, short_ref, rate, rate, AUDIOGRAM_MODERATE)
    np.random.seed(3)
    assert haaqi(long_proc, long_ref, rate, rate, AUDIOGRAM_MILD) == first


def test_ear_model_without_bm_keeps_the_envelopes_and_the_draws():
    rate = 24000
    ref = music(0.5, rate, 22)
    proc = processed_version(ref, rate, 23)
    np.random.seed(8)
    full = ear_model(ref, rate, proc, rate, HEARING_LOSS, 0, 65.0)
    after_full = np.random.standard_normal(2)
    np.random.seed(8)
    lean = ear_model(ref, rate, proc, rate, HEARING_LOSS, 0, 65.0, want_bm=False)
    np.testing.assert_array_equal(lean.processed_db, full.processed_db)
    assert lean.processed_bm is None
    np.testing.assert_array_equal(np.random.standard_normal(2), after_full)


def test_alignment_delays_shift_as_envelope_align():
    rng = np.random.default_rng(30)
    ref = lfilter(*butter(2, 0.05), rng.standard_normal((4, 6000)), axis=1)
    shifts = [-700, 0, 35, 1800]
    out = np.array([np.roll(r, s) for r, s in zip(ref, shifts)]) + 0.01 * rng.random((4, 6000))
    delays = alignment_delays(ref, out)
    for k in range(4):
        shifted = eb.envelope_align(ref[k], out[k])
        d = delays[k]
        mine = np.concatenate((out[k][d:], np.zeros(d))) if d > 0 else np.concatenate(
            (np.zeros(-d), out[k][:len(out[k]) + d]))
        np.testing.assert_array_equal(mine, shifted)
    assert list(delays) == shifts


def test_alignment_delays_of_envelopes_and_flat_rows_are_pyclaritys():
    # Smooth positive envelopes (near-equal lags around the peak: several candidates),
    # and a zero row (all lags tie: the float64 fallback, argmax's first lag)
    rng = np.random.default_rng(31)
    ref = 1.0 + np.abs(lfilter(*butter(2, 0.01), rng.standard_normal((5, 9000)), axis=1))
    out = np.array([np.roll(r, s) for r, s in zip(ref, [-2000, -3, 0, 40, 2399])])
    out = out * (1 + 0.05 * rng.random(out.shape))
    out[4] = 0.0  # a zero row: every lag ties
    delays = alignment_delays(ref, out)
    for k in range(len(ref)):
        shifted = eb.envelope_align(ref[k], out[k])
        d = delays[k]
        mine = np.concatenate((out[k][d:], np.zeros(d))) if d > 0 else np.concatenate(
            (np.zeros(-d), out[k][:len(out[k]) + d]))
        np.testing.assert_array_equal(mine, shifted, err_msg=f"row {k}")


@pytest.mark.parametrize("case", ["delayed", "advanced", "inverted", "quiet ends", "longer output"])
def test_input_align_is_pyclaritys(case):
    # The bulk alignment: the peak of |cross-covariance| (an inverted output peaks
    # negative), the 2 ms back-up, and the cut to where the reference is above 0.001
    # of its peak
    rng = np.random.default_rng(32)
    ref = music(0.8, 24000, 6)
    shift = {"delayed": 900, "advanced": -450, "inverted": 300, "quiet ends": 60,
             "longer output": 2000}[case]
    out = 0.7 * np.roll(ref, shift) + 0.003 * rng.standard_normal(len(ref))
    if case == "inverted":  # smooth: several lags near the peak are candidates
        ref = lfilter(*butter(2, 0.002), rng.standard_normal(len(ref)))
        out = -0.7 * np.roll(ref, shift) + 0.003 * rng.standard_normal(len(ref))
    if case == "quiet ends":  # silence, then a tail at 0.0015 of the peak: kept
        ref[:3000] = 0.0
        ref[-2000:] *= 0.0015 * np.max(np.abs(ref)) / np.max(np.abs(ref[-2000:]))
    if case == "longer output":
        out = np.concatenate((out, 0.01 * rng.standard_normal(5000)))
    got = input_align(ref, out)
    expected = eb.input_align(ref, out)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    if case == "quiet ends":
        assert len(got[0]) < len(ref)


@pytest.mark.parametrize("npts", [2000, 2096, 2143])
def test_env_smooth_matches_pyclarity(npts):
    envelopes = 40 * np.random.default_rng(npts).random((32, npts))
    np.testing.assert_allclose(segments.env_smooth(envelopes, 8, 24000.0),
                               eb.env_smooth(envelopes, 8, 24000.0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rate", [24000.0, 22050.0], ids=["24 kHz", "22.05 kHz: odd segment tails"])
def test_bm_covary_matches_pyclarity(rate):
    rng = np.random.default_rng(40)
    ref = rng.standard_normal((6, 5000))
    proc = 0.6 * np.roll(ref, 7, axis=1) + 0.4 * rng.standard_normal((6, 5000))
    proc[2] = 0.0  # a silent band: covariance 0
    ref[4, :2000] = 0.0
    got = segments.bm_covary(ref, proc, 16, rate)
    expected = eb.bm_covary(ref, proc, 16, rate)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("quiet", [False, True], ids=["above threshold", "below threshold"])
def test_melcor9_matches_pyclarity(quiet):
    rng = np.random.default_rng(50)
    reference = 30 * rng.random((32, 400)) + (-100 if quiet else 0)
    distorted = reference + 5 * rng.standard_normal((32, 400))
    np.random.seed(1)
    expected = eb.melcor9(reference, distorted, 2.5, 0.0, 8)
    np.random.seed(1)
    got = cepstrum.melcor9(reference, distorted, 2.5, 0.0, 8)
    np.testing.assert_allclose(got[:3], expected[:3], atol=1e-12)
    np.testing.assert_allclose(got[3], expected[3], atol=1e-12)
    assert (got[2] == 0.0) == quiet


def test_haspi_envelope_and_modulation_stages_match_pyclarity():
    rng = np.random.default_rng(60)
    ref_db = 30 + 10 * lfilter(*butter(2, 0.002), rng.standard_normal((32, 12000)), axis=1)
    proc_db = ref_db + rng.standard_normal((32, 12000))
    got = modulation.env_filter(ref_db, proc_db, 320, 2560.0, 24000.0)
    expected = ebm.env_filter(ref_db, proc_db, 320, 2560.0, 24000.0)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-10)
    np.random.seed(2)
    cep_expected = ebm.cepstral_correlation_coef(*expected, 2.5, 0.1, 6)
    np.random.seed(2)
    cep_got = modulation.cepstral_correlation_coef(*got, 2.5, 0.1, 6)
    for g, e in zip(cep_got, cep_expected):
        np.testing.assert_allclose(g, e, atol=1e-9)
    mod_got = modulation.fir_modulation_filter(*cep_expected, 2560.0)
    mod_expected = ebm.fir_modulation_filter(*cep_expected, 2560.0)
    for g, e in zip(mod_got, mod_expected):
        np.testing.assert_allclose(g, e, atol=1e-9)
    np.testing.assert_allclose(modulation.modulation_cross_correlation(*mod_got[:2]),
                               ebm.modulation_cross_correlation(*mod_expected[:2]), atol=1e-12)


@pytest.mark.parametrize("skip_first", [0, 1], ids=["no cached value", "cached value"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 1001)])
def test_legacy_draws_equal_numpys(skip_first, shape):
    np.random.seed(11)
    np.random.standard_normal(skip_first)
    expected = 0.5 + 1e-3 * np.random.standard_normal(shape)
    expected_next = np.random.standard_normal(2)
    np.random.seed(11)
    np.random.standard_normal(skip_first)
    got = add_standard_normal(np.full(shape, 0.5), 1e-3)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.random.standard_normal(2), expected_next)
    np.random.seed(11)
    np.random.standard_normal(skip_first)
    skip_standard_normal(int(np.prod(shape)))
    np.testing.assert_array_equal(np.random.standard_normal(2), expected_next)


@pytest.mark.parametrize("uniforms_first,count", [(0, 0), (1, 5), (155, 312), (311, 623),
                                                   (3, 100_003)])
def test_legacy_draws_from_any_position_equal_numpys(uniforms_first, count):
    # Uniform draws first move the generator to any word of its state, so that the
    # normals' four-word attempts straddle the 624-word blocks in every way
    np.random.seed(12)
    np.random.random(uniforms_first)
    expected = np.random.standard_normal(count)
    expected_next = np.random.standard_normal(3)
    np.random.seed(12)
    np.random.random(uniforms_first)
    np.testing.assert_array_equal(add_standard_normal(np.zeros(count), 1.0), expected)
    np.testing.assert_array_equal(np.random.standard_normal(3), expected_next)
    np.random.seed(12)
    np.random.random(uniforms_first)
    skip_standard_normal(count)
    np.testing.assert_array_equal(np.random.standard_normal(3), expected_next)


@pytest.mark.parametrize("n", [0, 5, 128, 129, 1000, 54321])
def test_pairwise_sum_is_numpys_sum(n):
    x = np.random.default_rng(n).random(n) ** 3
    assert pairwise_sum(x) == np.sum(x)


@pytest.mark.parametrize("n", [0, 5, 8, 128, 129, 1000, 54321])
def test_pairwise_sums_of_columns_are_numpys_sums(n):
    x = np.random.default_rng(n).random((n, 16)) ** 3
    out = np.empty(16)
    pairwise_sum_columns(x, out)
    expected = [np.sum(np.ascontiguousarray(x[:, j])) for j in range(16)]
    np.testing.assert_array_equal(out, expected)


# --- input checks -------------------------------------------------------------------------

@pytest.mark.parametrize("silent", ["processed", "reference", "empty"])
def test_silent_audio_is_missing_not_zero(silent):
    rate = 16000
    ref = music(0.5, rate, 70)
    proc = processed_version(ref, rate, 71)
    if silent == "processed":
        proc = np.zeros_like(proc)
    elif silent == "reference":
        ref = np.zeros_like(ref)
    else:
        proc, ref = np.array([]), np.array([])
    assert np.isnan(haaqi(proc, ref, rate, rate, AUDIOGRAM_MILD))
    score, raw = haspi_v2(ref, rate, proc, rate, AUDIOGRAM_MILD)
    assert np.isnan(score) and np.all(np.isnan(raw))


@pytest.mark.parametrize("kwargs,message", [
    ({"processed_sr": 0}, "processed_sr > 0"),
    ({"reference_sr": -16000}, "reference_sr > 0"),
    ({"processed_sr": "fast"}, "processed_sr as a number"),
    ({"audiogram": Audiogram(levels=np.array([10, 20, 30]),
                             frequencies=np.array([250, 1000, 4000]))}, "spanning 250..6000"),
    ({"audiogram": Audiogram(levels=np.array([10, 20, 30, 40]),
                             frequencies=np.array([500, 1000, 4000, 8000]))}, "spanning 250..6000"),
    ({"processed": np.zeros((2, 100))}, "1-D"),
    ({"reference": np.array([0.1, np.nan, 0.2])}, "finite samples in reference"),
    ({"equalisation": 3}, "equalisation 1"),
])
def test_haaqi_rejects_bad_input(kwargs, message):
    args = {"processed": np.ones(1600) * 0.1, "reference": np.ones(1600) * 0.1,
            "processed_sr": 16000, "reference_sr": 16000, "audiogram": AUDIOGRAM_MILD}
    args.update(kwargs)
    equalisation = args.pop("equalisation", 1)
    with pytest.raises(ValueError, match=message):
        haaqi(args["processed"], args["reference"], args["processed_sr"], args["reference_sr"],
              args["audiogram"], equalisation=equalisation)


@pytest.mark.parametrize("kwargs,message", [
    ({"reference_sr": 0}, "reference_sr > 0"),
    ({"f_lp": 5000}, "f_lp"),
    ({"itype": 4}, "itype"),
])
def test_haspi_rejects_bad_input(kwargs, message):
    args = {"reference_sr": 16000, "f_lp": 320, "itype": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        haspi_v2(np.ones(1600) * 0.1, args["reference_sr"], np.ones(1600) * 0.1, 16000,
                 AUDIOGRAM_MILD, f_lp=args["f_lp"], itype=args["itype"])


def test_sparse_audiogram_is_interpolated_as_pyclarity_does():
    rate = 16000
    ref = music(0.6, rate, 80)
    proc = processed_version(ref, rate, 81)
    sparse = Audiogram(levels=np.array([10, 30, 50, 60]), frequencies=np.array([250, 1000, 4000, 8000]))
    full = sparse.resample(np.array([250, 500, 1000, 2000, 4000, 6000]))
    np.random.seed(0)
    a = haaqi(proc, ref, rate, rate, sparse)
    np.random.seed(0)
    assert haaqi(proc, ref, rate, rate, full) == a

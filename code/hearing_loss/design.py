"""Every filter of pyclarity's MSBG ``Ear``, designed once per audiogram.

``ear_design(audiogram)`` gathers, from pyclarity's own design code, what
``Ear.process`` would build on each call: the outer/middle-ear FIR filters,
the smearing matrix, the gammatone, high-pass and envelope filters of each
band and the recruitment parameters. Designs are cached by audiogram, so a
run over many signals designs each listener category once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.signal
from clarity.evaluator.msbg.cochlea import Cochlea
from clarity.evaluator.msbg.msbg import UPPER_CUTOFF_HZ, Ear
from clarity.utils.audiogram import Audiogram

MSBG_SAMPLE_RATE = 44100  # the only rate pyclarity's MSBG accepts
MSBG_SETTINGS = {"src_pos": "ff", "equiv_0db_spl": 100.0, "ahr": 20.0}
ENVELOPE_PADLEN = 8  # filtfilt's padlen in pyclarity's compute_envelope: 3 * 3 - 1
_MAX_FIR_TAPS = 4096  # longer than pyclarity's outer/middle-ear FIR (1015 taps at 44.1 kHz)


@dataclass(frozen=True)
class EarDesign:
    """What ``Ear`` with one audiogram applies to a signal; arrays are float64.

    Per-band arrays have one row per gammatone band; bands without pyclarity's
    extra high-pass filter have ``use_hp`` False (their ``hp_*`` rows unused).
    """

    equiv_0db_spl: float  # equiv_0db_spl + ahr, as Ear.process uses it
    fir_in: np.ndarray  # free field -> cochlea
    fir_out: np.ndarray  # cochlea -> free field, then the 18 kHz low-pass, as one FIR
    f_smear: np.ndarray | None  # [256, 256]; None: no smearing ("NOTHING" severity)
    gt_b: np.ndarray  # [bands, 3] gammatone stage, applied 4 times
    gt_a: np.ndarray
    delays: np.ndarray  # int64 [bands], gammatone time advance in samples
    use_hp: np.ndarray  # bool [bands]
    hp_b: np.ndarray  # [bands, 3]
    hp_a: np.ndarray
    env_b: np.ndarray  # [bands, 3] envelope low-pass (run forwards and backwards)
    env_a: np.ndarray
    env_zi: np.ndarray  # [bands, 2] scipy.signal.lfilter_zi of the envelope filter
    env_max: np.ndarray  # [bands] envelope ceiling (linear)
    exponent: np.ndarray  # [bands] expansion ratio - 1
    recombination_gain: float


def audiogram_key(audiogram: Audiogram) -> tuple:
    """Hashable identity of an audiogram (frequencies and levels)."""
    return (tuple(float(f) for f in audiogram.frequencies),
            tuple(float(v) for v in audiogram.levels))


def ear_design(audiogram: Audiogram) -> EarDesign:
    """All filters ``Ear(**MSBG_SETTINGS)`` uses for ``audiogram`` (cached).

    Raises:
        ValueError: when pyclarity's filterbank is not the 4th-order gammatone
            that the compiled band filter implements.
    """
    return _design(audiogram_key(audiogram))


@functools.lru_cache(maxsize=16)
def _design(key: tuple) -> EarDesign:
    frequencies, levels = key
    audiogram = Audiogram(levels=np.array(levels), frequencies=np.array(frequencies))
    cochlea = Cochlea(audiogram=audiogram)
    p = cochlea.gtfbank_params
    if int(p["NGAMMA"]) != 4:
        raise ValueError(f"gammatone order {p['NGAMMA']} in pyclarity's filterbank; 4 expected")
    n_bands = len(p["GTn_CentFrq"])
    start_hp = int(p["Start2PoleHP"]) - 1  # first band with the extra high-pass
    hp_b = np.zeros((n_bands, 3))
    hp_a = np.zeros((n_bands, 3))
    hp_b[start_hp:] = p["HP_nums"][: n_bands - start_hp]
    hp_a[start_hp:] = p["HP_denoms"][: n_bands - start_hp]
    use_hp = np.arange(n_bands) >= start_hp

    env_b, env_a, env_zi = _envelope_filters(np.asarray(p["ERBn_CentFrq"], dtype=float))
    equiv = MSBG_SETTINGS["equiv_0db_spl"] + MSBG_SETTINGS["ahr"]
    env_max = np.power(10, 0.05 * (cochlea.eq_loud_db_catch_up - equiv))
    gt_b, gt_a = _normalised(np.asarray(p["GTn_nums"], float), np.asarray(p["GTn_denoms"], float))
    hp_b[use_hp], hp_a[use_hp] = _normalised(hp_b[use_hp], hp_a[use_hp])
    return EarDesign(
        equiv_0db_spl=equiv,
        fir_in=_outer_middle_ear_fir(backward=False),
        fir_out=np.convolve(_outer_middle_ear_fir(backward=True), _low_pass_fir()),
        f_smear=None if cochlea.smearer is None else cochlea.smearer.f_smear,
        gt_b=gt_b, gt_a=gt_a,
        delays=np.asarray(p["GTnDelays"], dtype=np.int64),
        use_hp=use_hp, hp_b=hp_b, hp_a=hp_a,
        env_b=env_b, env_a=env_a, env_zi=env_zi,
        env_max=env_max,
        exponent=cochlea.cf_expansion - 1,
        recombination_gain=float(np.power(10, -0.05 * p["Recombination_dB"])),
    )


def _normalised(b: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide by a[0] as scipy's lfilter does before filtering (rows are filters)."""
    a0 = a[:, :1]
    return b / a0, a / a0


def _envelope_filters(erbn_cf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyclarity compute_envelope's per-band elliptic low-pass and filtfilt's initial state."""
    bs, as_, zis = [], [], []
    for erb in erbn_cf:
        fc = (30 / 40) * min(100, erb)
        b, a = scipy.signal.ellip(2, 0.25, 35, fc / (MSBG_SAMPLE_RATE / 2))
        zis.append(scipy.signal.lfilter_zi(b, a))
        bs.append(b)
        as_.append(a)
    b, a = _normalised(np.array(bs), np.array(as_))
    return b, a, np.array(zis)


def _outer_middle_ear_fir(backward: bool) -> np.ndarray:
    """The FIR ``Ear.src_to_cochlea_filt`` designs, read off its impulse response."""
    impulse = np.zeros(_MAX_FIR_TAPS)
    impulse[0] = 1.0
    src_correction = Ear.get_src_correction(MSBG_SETTINGS["src_pos"])
    response = Ear.src_to_cochlea_filt(impulse, src_correction, MSBG_SAMPLE_RATE, backward=backward)
    return np.trim_zeros(response, "b")


def _low_pass_fir() -> np.ndarray:
    """The final low-pass FIR of ``Ear.process`` (flat to 18 kHz)."""
    winlen = 2 * math.floor(0.0015 * MSBG_SAMPLE_RATE) + 1
    return scipy.signal.firwin(winlen, UPPER_CUTOFF_HZ / int(MSBG_SAMPLE_RATE / 2),
                               window=("kaiser", 8))

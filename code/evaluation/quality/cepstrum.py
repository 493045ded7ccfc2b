"""HAAQI's envelope feature: mel-cepstrum correlations after a modulation filterbank.

The same computation as pyclarity's ``eb.melcor9`` (and ``melcor9_crosscovmatrix``),
with the 96 filter-and-correlate steps done as array operations.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.signal import firwin

logger = logging.getLogger(__name__)

MODULATION_EDGES_HZ = (4.0, 8.0, 12.5, 20.0, 32.0, 50.0, 80.0)  # 8 bands covering 0..125 Hz
_SMALL = 1.0e-30


def cepstral_basis(nbands: int, ncoef: int) -> np.ndarray:
    """``[nbands, ncoef]`` half-cosine basis, each column of unit norm (the mel cepstrum)."""
    basis = np.cos(np.outer(np.arange(nbands), np.arange(ncoef)) * np.pi / (nbands - 1))
    return basis / np.linalg.norm(basis, axis=0, keepdims=True)


def modulation_filters(segment_size: int) -> np.ndarray:
    """``[8, taps]`` FIR modulation filters for envelopes sampled every ``segment_size / 2`` ms."""
    nyquist = 0.5 * 1000.0 / (0.5 * segment_size)
    n_fir = int(2 * np.floor(np.around(128 * (nyquist / 125)) / 2))
    edges = MODULATION_EDGES_HZ
    filters = [firwin(n_fir + 1, edges[0] / nyquist, window="hann", pass_zero="lowpass")]
    filters += [firwin(n_fir + 1, [edges[m - 1] / nyquist, edges[m] / nyquist], window="hann",
                       pass_zero="bandpass") for m in range(1, len(edges))]
    filters.append(firwin(n_fir + 1, edges[-1] / nyquist, window="hann", pass_zero="highpass"))
    return np.array(filters)


def _correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # |normalised cross-covariance| along the last axis, 0 where either has no energy
    x = x - np.mean(x, axis=-1, keepdims=True)
    y = y - np.mean(y, axis=-1, keepdims=True)
    sx = np.sum(x ** 2, axis=-1)
    sy = np.sum(y ** 2, axis=-1)
    ok = (sx >= _SMALL) & (sy >= _SMALL)
    out = np.zeros(sx.shape)
    out[ok] = np.abs(np.sum(x * y, axis=-1)[ok]) / np.sqrt(sx[ok] * sy[ok])
    return out


def melcor9(reference: np.ndarray, distorted: np.ndarray, threshold: float, add_noise: float,
            segment_size: int, n_cepstral_coef: int = 6) -> tuple[float, float, float, np.ndarray]:
    """Cepstral correlations of two smoothed envelopes in 8 modulation bands.

    Parameters:
        reference, distorted: float64 ``[bands, segments]`` smoothed dB envelopes.
        threshold: silence threshold (dB) on the reference's mean loudness per segment.
        add_noise: dither added to both (dB); drawn from numpy's global generator
            even when 0, as pyclarity does, so later draws stay in step.
        segment_size: the smoothing segment in ms (sets the envelope rate).
        n_cepstral_coef: cepstral coefficients (the first, the level, is left out).

    Returns:
        ``(average, low, high, per_band)`` as pyclarity's ``eb.melcor9``: the mean
        correlation over all 8 modulation bands, bands 1-4, bands 5-8, and per band.
        All 0 (with a warning) when fewer than two segments are above ``threshold``.
    """
    nbands = reference.shape[0]
    loudness = 20 * np.log10(np.sum(10 ** (reference / 20), 0) / nbands)
    index = np.where(loudness > threshold)[0]
    nmod = 1 + len(MODULATION_EDGES_HZ)
    if index.shape[0] <= 1:
        logger.warning("melcor9: signal below threshold, outputs set to 0")
        return 0.0, 0.0, 0.0, np.zeros(nmod)
    ref = reference[:, index]
    dist = distorted[:, index]
    ref = ref + add_noise * np.random.standard_normal(ref.shape)
    dist = dist + add_noise * np.random.standard_normal(dist.shape)
    cepm = cepstral_basis(nbands, n_cepstral_coef)
    ref_cep = cepm.T @ ref
    dist_cep = cepm.T @ dist
    ref_cep -= np.mean(ref_cep, axis=1, keepdims=True)
    dist_cep -= np.mean(dist_cep, axis=1, keepdims=True)

    filters = modulation_filters(segment_size)
    nsamp = index.shape[0]
    half = (filters.shape[1] - 1) // 2
    # Each coefficient track through each modulation filter, 'full' convolution trimmed
    # by the filter's half length (zero-phase alignment)
    ref_mod = np.empty((nmod, n_cepstral_coef, nsamp))
    dist_mod = np.empty((nmod, n_cepstral_coef, nsamp))
    for m in range(nmod):
        for j in range(n_cepstral_coef):
            ref_mod[m, j] = np.convolve(filters[m], ref_cep[j])[half:half + nsamp]
            dist_mod[m, j] = np.convolve(filters[m], dist_cep[j])[half:half + nsamp]
    cross = _correlations(ref_mod, dist_mod)  # [nmod, ncoef]
    average = float(np.sum(cross[:, 1:]) / (nmod * (n_cepstral_coef - 1)))
    low = float(np.sum(cross[:4, 1:]) / (4 * (n_cepstral_coef - 1)))
    high = float(np.sum(cross[4:8, 1:]) / (4 * (n_cepstral_coef - 1)))
    return average, low, high, np.mean(cross[:, 1:], axis=1)

"""HASPI v2's envelope modulation features, from the ear model's dB envelopes.

The same computations as pyclarity's ``clarity.evaluator.haspi.ebm``:
``env_filter`` (low-pass and decimate), ``cepstral_correlation_coef``,
``fir_modulation_filter`` and ``modulation_cross_correlation``. The low-pass is
evaluated only at the samples the decimation keeps, and the modulation filterbank
is one real FIR per band, applied to all cepstral tracks of both signals at once
in the frequency domain.
"""

from __future__ import annotations

import logging
from math import floor

import numba
import numpy as np
import scipy.fft

from code.evaluation.quality.cepstrum import cepstral_basis

logger = logging.getLogger(__name__)

MODULATION_CENTERS_HZ = (2, 6, 10, 16, 25, 40, 64, 100, 160, 256)
_SMALL = 1e-30


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _decimated_convolution(envelopes, taps, nhalf, space, out):
    # out[j, k] = full convolution of band k with taps, at sample nhalf + j * space.
    # The 52-tap sums may be reassociated (SIMD): a rounding-level difference only.
    nchan, nsamp = envelopes.shape
    nfilt = taps.shape[0]
    for k in range(nchan):
        row = envelopes[k]
        for j in range(out.shape[0]):
            t = j * space + nhalf
            acc = 0.0
            if t - nfilt + 1 >= 0 and t < nsamp:
                for i in range(nfilt):
                    acc += taps[i] * row[t - i]
            else:
                for i in range(nfilt):
                    m = t - i
                    if 0 <= m < nsamp:
                        acc += taps[i] * row[m]
            out[j, k] = acc


def env_filter(reference_db: np.ndarray, processed_db: np.ndarray, filter_cutoff: float,
               freq_sub_sample: float, freq_samp: float) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass the dB envelopes (von Hann FIR) and subsample them.

    Parameters:
        reference_db, processed_db: float64 ``[bands, samples]`` at ``freq_samp``.
        filter_cutoff: low-pass cutoff in Hz; freq_sub_sample: output rate in Hz.

    Returns:
        ``(reference, processed)`` as float64 ``[kept samples, bands]``, pyclarity's
        ``ebm.env_filter`` (which filters every sample, then keeps one in
        ``floor(freq_samp / freq_sub_sample)``).
    """
    if freq_sub_sample > freq_samp:
        raise ValueError(f"expected a subsampling rate up to {freq_samp} Hz, got {freq_sub_sample}")
    if filter_cutoff > 0.5 * freq_sub_sample:
        raise ValueError(f"expected a low-pass cutoff up to {0.5 * freq_sub_sample} Hz, "
                         f"got {filter_cutoff}")
    nfilt = round(0.001 * (0.7 * 1000 * (1 / filter_cutoff)) * freq_samp)  # 0.7 / cutoff s
    nhalf = floor(nfilt / 2)
    nfilt = int(2 * nhalf)
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, nfilt / 2 + 1) / (nfilt + 1)))
    taps = np.concatenate((window, np.flip(window)))
    taps = taps / np.sum(taps)
    space = floor(freq_samp / freq_sub_sample)
    nsamp = reference_db.shape[1]
    nkeep = len(range(0, nsamp, space))
    outs = []
    for db in (reference_db, processed_db):
        out = np.empty((nkeep, db.shape[0]))
        _decimated_convolution(np.ascontiguousarray(db, dtype=np.float64), taps, nhalf, space,
                               out)
        outs.append(out)
    return outs[0], outs[1]


def cepstral_correlation_coef(reference_db: np.ndarray, processed_db: np.ndarray,
                              thresh_cep: float, thresh_nerve: float,
                              nbasis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Zero-mean cepstral coefficient tracks of the segments above threshold.

    Parameters:
        reference_db, processed_db: ``[samples, bands]`` subsampled dB envelopes.
        thresh_cep: silence threshold (dB) on the reference's mean loudness.
        thresh_nerve: dither (dB RMS) added to both, drawn from numpy's global generator
            (reference first, then processed), exactly as pyclarity draws it.
        nbasis: number of cepstral coefficients.

    Returns:
        ``(reference_cep, processed_cep)`` ``[segments, nbasis]`` as pyclarity's
        ``ebm.cepstral_correlation_coef``; ``None`` when at most one segment is above
        the threshold (pyclarity raises ``ValueError("Signal below threshold")``).
    """
    nbands = reference_db.shape[1]
    cepm = cepstral_basis(nbands, nbasis)
    loudness = 20 * np.log10(np.sum(10 ** (reference_db / 20), 1) / nbands)
    index = np.where(loudness > thresh_cep)[0]
    if len(index) <= 1:
        return None
    reference = reference_db[index, :]
    processed = processed_db[index, :]
    reference = reference + thresh_nerve * np.random.standard_normal(reference.shape)
    processed = processed + thresh_nerve * np.random.standard_normal(processed.shape)
    reference_cep = reference @ cepm
    processed_cep = processed @ cepm
    return (reference_cep - np.mean(reference_cep, axis=0),
            processed_cep - np.mean(processed_cep, axis=0))


def _modulation_design(freq_sub_sampling: float) -> tuple[np.ndarray, list[np.ndarray]]:
    # Centre frequencies below Nyquist and their von Hann FIRs (0.24 s up to 10 Hz, then
    # constant Q), as pyclarity's fir_modulation_filter designs them.
    centers = np.array(MODULATION_CENTERS_HZ)
    nmod = len(centers)
    edge = np.zeros(nmod + 1)
    edge[0:3] = [0, 4, 8]
    for k in range(3, nmod + 1):
        edge[k] = (centers[k - 1] ** 2) / edge[k - 1]
    edge = edge[edge < 0.5 * freq_sub_sampling]
    nmod = len(edge) - 1
    centers = centers[:nmod]
    t = np.zeros(nmod)
    t[0:2] = 0.24
    t[2:nmod] = 0.24 * centers[2] / centers[2:nmod]
    nfir = 2 * np.floor(t * freq_sub_sampling / 2)
    taps = []
    for k in range(nmod):
        coefficient = np.hanning(nfir[k] + 1)
        taps.append(coefficient / np.sum(coefficient))
    return centers, taps


def fir_modulation_filter(reference_envelope: np.ndarray, processed_envelope: np.ndarray,
                          freq_sub_sampling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complex-demodulated FIR modulation filterbank of the cepstral tracks.

    pyclarity demodulates each track by sqrt(2) e^(-i w n), low-passes it with a von
    Hann FIR ``h`` (trimmed to zero phase) and remodulates the real part; that equals
    one real FIR ``2 h[m] cos(w (m - half))`` (just ``h`` for the lowest band), so
    here every band is one product with the tracks' spectrum, taken once.

    Parameters:
        reference_envelope, processed_envelope: ``[samples, channels]`` tracks.
        freq_sub_sampling: their sampling rate in Hz.

    Returns:
        ``(reference, processed, centers)``: ``[channels, bands, samples]`` filtered
        tracks and the band centre frequencies, as pyclarity's ``fir_modulation_filter``
        (to rounding).
    """
    nsamp, nchan = reference_envelope.shape
    centers, taps = _modulation_design(freq_sub_sampling)
    both = np.concatenate((reference_envelope, processed_envelope), axis=1)  # [samples, 2 ch]
    nfft = scipy.fft.next_fast_len(nsamp + max(len(t) for t in taps) - 1, real=True)
    spectrum = scipy.fft.rfft(both, nfft, axis=0)
    out = np.empty((2 * nchan, len(centers), nsamp))
    for k, (center, coefficient) in enumerate(zip(centers, taps)):
        half = len(coefficient) // 2
        if k > 0:
            w = np.pi * center / (0.5 * freq_sub_sampling)
            coefficient = 2 * coefficient * np.cos(w * (np.arange(len(coefficient)) - half))
        filtered = scipy.fft.irfft(spectrum * scipy.fft.rfft(coefficient, nfft)[:, None], nfft,
                                   axis=0)
        out[:, k, :] = filtered[half:half + nsamp].T
    return out[:nchan], out[nchan:], centers


def modulation_cross_correlation(reference_modulation: np.ndarray,
                                 processed_modulation: np.ndarray) -> np.ndarray:
    """Mean over cepstral channels 1..5 of |normalised covariance| per modulation band.

    Inputs ``[channels, bands, samples]``; returns ``[bands]``, as pyclarity's
    ``modulation_cross_correlation``.
    """
    # Only cepstral channels 1..5 enter the mean
    x = reference_modulation[1:6] - np.mean(reference_modulation[1:6], axis=2, keepdims=True)
    y = processed_modulation[1:6] - np.mean(processed_modulation[1:6], axis=2, keepdims=True)
    xsum = np.einsum("ijk,ijk->ij", x, x)
    ysum = np.einsum("ijk,ijk->ij", y, y)
    ok = (xsum >= _SMALL) & (ysum >= _SMALL)
    covariance = np.zeros(xsum.shape)
    covariance[ok] = np.abs(np.einsum("ijk,ijk->ij", x, y)[ok]) / np.sqrt(xsum[ok] * ysum[ok])
    return np.mean(covariance, 0)

"""How well the training's quality guard ranks signals by HAAQI.

    python main.py --input unprocessed --models identity,NLR1 --results-dir R   # first
    python benchmarks/quality_guard.py [--results-dir R] [--models identity,NLR1,...] [--split valid]

For each signal of the split and each output, the guard's ``spectral_departure`` (of the
output from the unprocessed audio through the listener's NAL-R) and HAAQI as the report
computes it (``ear_haaqi``, mean of the ears). Outputs: each model's own in
``R/<Model>/from_unprocessed/`` (``--models``), and perturbations of the first non-identity
model's output that training could reach: 6 dB louder, 6 dB softer, low-passed at 3 kHz,
4 kHz boosted by 10 dB. Prints Kendall's tau and Spearman's rho between HAAQI and minus the
departure over all (signal, output) pairs, and the mean tau within a signal (across its
outputs: what a training step compares). Last line:
``guard_kendall_all=X guard_kendall_within=Y pairs=N``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.quality_guard", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt
from scipy.stats import kendalltau, spearmanr

from code.data.audio import read_audio
from code.evaluation.quality.aid_quality import ear_haaqi, signal_haaqi
from code.models.audiograms import DEFAULT_AUDIOGRAMS
from code.models.prescriptions import NALR
from code.training.quality_guard import spectral_departure

RATE = 44100


def perturbations(audio: np.ndarray) -> dict[str, np.ndarray]:
    """Changes a training could make to an aid's output, ``[2, T]`` float64 each."""
    low = sosfiltfilt(butter(4, 3000, fs=RATE, output="sos"), audio, axis=-1)
    band = sosfiltfilt(butter(2, [3000, 5000], btype="band", fs=RATE, output="sos"), audio, axis=-1)
    return {"+6 dB": audio * 2.0, "-6 dB": audio * 0.5, "low-passed 3 kHz": low,
            "4 kHz +10 dB": audio + (10 ** 0.5 - 1) * band}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default="data/demo/cadenza_data")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--models", default="identity,NLR1")
    parser.add_argument("--signals", type=int, default=0, help="at most this many signals (0: all)")
    args = parser.parse_args(argv)
    data = Path(args.data_root)
    records = json.loads((data / "metadata" / f"{args.split}_metadata.json").read_text())
    records = records[: args.signals] if args.signals else records
    models = [m for m in args.models.split(",") if m]
    nalr = NALR(RATE)
    haaqis, departures, groups = [], [], []
    for r in records:
        audiogram = DEFAULT_AUDIOGRAMS[r["hearing_loss"]]
        reference = read_audio(data / args.split / "unprocessed" / f"{r['signal']}_unproc.flac", RATE)
        levels = torch.tensor(np.asarray(audiogram.levels, dtype=np.float32))[None]
        with torch.no_grad():
            prescribed = nalr(torch.from_numpy(reference)[None], levels)
        outputs = {m: read_audio(Path(args.results_dir) / m / "from_unprocessed" / f"{r['signal']}.wav", RATE)
                   .astype(np.float64) for m in models}
        base = next((m for m in models if m != "identity"), models[0])
        outputs.update(perturbations(outputs[base]))
        for name, audio in outputs.items():
            value = signal_haaqi(ear_haaqi(audio, reference, RATE, audiogram))
            if np.isnan(value):
                continue
            with torch.no_grad():
                guard = float(spectral_departure(torch.from_numpy(np.ascontiguousarray(audio)).float()[None], prescribed, RATE)[0])
            haaqis.append(value)
            departures.append(guard)
            groups.append(r["signal"])
            print(f"{r['signal'][:12]} {r['hearing_loss']:8s} {name:18s} HAAQI {value:.3f} departure {guard:7.3f}")
    haaqis, minus = np.array(haaqis), -np.array(departures)
    tau_all = kendalltau(haaqis, minus)[0]
    rho_all = spearmanr(haaqis, minus)[0]
    within = []
    for signal in dict.fromkeys(groups):
        idx = [i for i, g in enumerate(groups) if g == signal]
        if len(idx) > 2 and np.ptp(haaqis[idx]) > 0:
            within.append(kendalltau(haaqis[idx], minus[idx])[0])
    print(f"all pairs: Kendall tau {tau_all:.3f}, Spearman rho {rho_all:.3f}; within a signal: mean tau "
          f"{np.nanmean(within):.3f} over {len(within)} signals")
    print(f"guard_kendall_all={tau_all:.3f} guard_kendall_within={np.nanmean(within):.3f} pairs={len(haaqis)}")


if __name__ == "__main__":
    main()

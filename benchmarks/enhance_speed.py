"""Stage 1 speed: the project's NLR1 against pyclarity's own NALR + Compressor.

    python benchmarks/enhance_speed.py [--signals 20]

Both sides process the same real audio (demo excerpts looped to 4..6 s,
44.1 kHz stereo) with the same parameters, in one process, one after the
other. pyclarity's side builds the NAL-R filter per signal, as the recipes do.
Last line: ``enhance_speedup=X max_abs_diff=Y``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.enhance_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
from clarity.enhancer.compressor import Compressor
from clarity.enhancer.nalr import NALR

from code.data_loading import read_audio
from code.models.hearing_aid_models import DEFAULT_AUDIOGRAMS, NLR1

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"


def signals(n: int) -> list[tuple[np.ndarray, str]]:
    """n real stereo excerpts at 44.1 kHz, looped or cut to 4..6 s, with their category."""
    rng = np.random.default_rng(0)
    records = json.loads((DEMO / "metadata" / "train_metadata.json").read_text())
    out = []
    for i in range(n):
        r = records[i % len(records)]
        audio = read_audio(DEMO / "train" / "unprocessed" / f"{r['signal']}_unproc.flac") * 2.0
        length = int(rng.uniform(4.0, 6.0) * 44100)
        out.append((np.resize(audio, (2, length)).astype(np.float32), r["hearing_loss"]))
    return out


# The Cadenza baseline's hearing aid, written out from its published config
# (pyclarity 0.9.0, recipes/cad1/task1/baseline/config.yaml: ``nalr.nfir`` and
# ``compressor.*``; ``makeup_gain`` is pyclarity's Compressor default). The
# reference chain takes these literal values, never the model's own settings.
BASELINE = {"nfir": 220, "threshold": 0.35, "attenuation": 0.1, "attack": 50.0,
            "release": 1000.0, "rms_buffer_size": 0.064, "makeup_gain": 1.0}


def pyclarity_nlr1(audio: np.ndarray, audiogram, *, sample_rate: int = 44100, nfir: int,
                   threshold: float, attenuation: float, attack: float, release: float,
                   rms_buffer_size: float, makeup_gain: float = 1.0) -> np.ndarray:
    """pyclarity's NALR + Compressor called directly with the given parameters,
    cropped by the filter's known delay (the reference the tests compare with)."""
    nalr = NALR(nfir, sample_rate)
    compressor = Compressor(fs=sample_rate, attack=attack, release=release,
                            threshold=threshold, attenuation=attenuation,
                            rms_buffer_size=rms_buffer_size, makeup_gain=makeup_gain)
    fir, _ = nalr.build(audiogram)
    delay = nfir // 2
    out = []
    for channel in audio.astype(np.float64):
        compressed, _, _ = compressor.process(nalr.apply(fir, channel))
        out.append(compressed[delay: delay + audio.shape[1]])
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=20)
    args = parser.parse_args()
    data = signals(args.signals)
    seconds = sum(a.shape[1] for a, _ in data) / 44100
    model = NLR1()
    model(data[0][0][:, :4410], DEFAULT_AUDIOGRAMS["Mild"])  # compile the loop once (cached on disk)

    start = time.perf_counter()
    theirs = [pyclarity_nlr1(a, DEFAULT_AUDIOGRAMS[c], **BASELINE) for a, c in data]
    t_theirs = time.perf_counter() - start
    start = time.perf_counter()
    mine = [model(a, DEFAULT_AUDIOGRAMS[c]) for a, c in data]
    t_mine = time.perf_counter() - start

    diff = max(float(np.max(np.abs(m - t))) for m, t in zip(mine, theirs))
    print(f"{len(data)} signals, {seconds:.1f} s of 44.1 kHz stereo audio")
    print(f"pyclarity NALR + Compressor: {t_theirs:.2f} s ({t_theirs / len(data) * 1000:.0f} ms/signal)")
    print(f"project NLR1:                {t_mine:.3f} s ({t_mine / len(data) * 1000:.1f} ms/signal)")
    print(f"enhance_speedup={t_theirs / t_mine:.1f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()

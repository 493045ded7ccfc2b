"""The torch MSBG (``code.hearing_loss.torch_ear``) against the project's fast MSBG: agreement and speed.

    python benchmarks/msbg_torch.py [--per-category 2] [--device cpu|cuda] [--seconds S]

Demo signals of the valid split (unprocessed, whole, 44.1 kHz stereo, scaled to
a 0.9 peak: about full scale, as the 1e-4 bound assumes), ``--per-category``
of each hearing-loss category in metadata order, each with its category's
audiogram. The fast simulator is ``simulate_hearing_loss(..., simulator="fast")``
(its two ears in parallel threads); the torch one is ``simulate_torch`` on one
``[1, 2, T]`` item at a time, in each of ``MODES``, on ``--device`` (default:
CUDA when available). Both are warmed first (the fast one's loops compiled,
both designs built, first device calls made), so the times are of simulating
only; "No Loss" items are passed through by both. Differences are against the
fast simulator's float64 output (``simulate_ear``, before
``simulate_hearing_loss`` rounds it to float32).
Last line: ``torch_msbg_max_abs_diff=X speed_vs_fast=Y`` (float32 audio in
and out, computed in float64, as ``--msbg torch`` runs it; Y = fast time /
torch time, above 1: torch is faster).
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
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.msbg_torch", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import torch

from code.config import HEARING_LOSS_CATEGORIES
from code.data.audio import read_audio
from code.hearing_loss.design import ear_design
from code.hearing_loss.fast import simulate_ear
from code.hearing_loss.simulator import simulate_hearing_loss
from code.hearing_loss.torch_ear import simulate_torch, torch_ear
from code.models.audiograms import DEFAULT_AUDIOGRAMS

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"
# name: (audio dtype in and out, cochlea dtype; None: the audio's). The first is the default.
MODES = {"float32": (torch.float32, torch.float64),
         "float32-cochlea32": (torch.float32, None),
         "float64": (torch.float64, torch.float64)}


def demo_signals(per_category: int) -> list[tuple[str, str, np.ndarray]]:
    """(signal, category, float32 [2, T] at a 0.9 peak) for the first valid signals of each category."""
    records = json.loads((DEMO / "metadata" / "valid_metadata.json").read_text())
    out = []
    for category in HEARING_LOSS_CATEGORIES:
        for r in [r for r in records if r["hearing_loss"] == category][:per_category]:
            audio = read_audio(DEMO / "valid" / "unprocessed" / f"{r['signal']}_unproc.flac", 44100)
            out.append((r["signal"], category, (audio * (0.9 / np.max(np.abs(audio)))).astype(np.float32)))
    return out


def run_torch(audio: np.ndarray, category: str, mode: str, device: str) -> np.ndarray:
    dtype, cochlea_dtype = MODES[mode]
    design = None if category == "No Loss" else ear_design(DEFAULT_AUDIOGRAMS[category])
    with torch.no_grad():
        x = torch.from_numpy(audio)[None].to(device=device, dtype=dtype)
        out = simulate_torch(x, [design], cochlea_dtype=cochlea_dtype)[0]
        return out.cpu().numpy()  # waits for the device


def fast_float64(audio: np.ndarray, category: str) -> np.ndarray:
    if category == "No Loss":
        return audio.astype(np.float64)
    design = ear_design(DEFAULT_AUDIOGRAMS[category])
    return np.stack([simulate_ear(ch.astype(np.float64), design) for ch in audio])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-category", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=None,
                        help="cut each signal to at most this long (default: whole; the tests' smallest size)")
    args = parser.parse_args(argv)
    data = demo_signals(args.per_category)
    if args.seconds is not None:
        data = [(signal, category, audio[:, :int(args.seconds * 44100)]) for signal, category, audio in data]
    seconds = sum(a.shape[1] for _, _, a in data) / 44100
    for category in HEARING_LOSS_CATEGORIES[1:]:  # warm-up
        simulate_hearing_loss(data[0][2][:, :8820], DEFAULT_AUDIOGRAMS[category], simulator="fast")
        torch_ear(ear_design(DEFAULT_AUDIOGRAMS[category]))
        for mode in MODES:
            run_torch(data[0][2][:, :8820], category, mode, args.device)

    start = time.perf_counter()
    for _, category, audio in data:
        simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS[category], simulator="fast")
    t_fast = time.perf_counter() - start
    expected = [fast_float64(audio, category) for _, category, audio in data]
    times, diffs = {}, {}
    for mode in MODES:
        start = time.perf_counter()
        mine = [run_torch(audio, category, mode, args.device) for _, category, audio in data]
        times[mode] = time.perf_counter() - start
        diffs[mode] = [float(np.max(np.abs(m.astype(np.float64) - e))) for m, e in zip(mine, expected)]

    print(f"{len(data)} demo signals, {seconds:.1f} s of 44.1 kHz stereo at a 0.9 peak; "
          f"torch {torch.__version__} on {args.device} ({torch.get_num_threads()} CPU threads)")
    print("max abs diff against the fast simulator's float64 output, per torch mode:")
    print(f"{'signal':<26}{'category':<10}{'peak out':>9}" + "".join(f"{m:>19}" for m in MODES))
    for i, ((signal, category, _), e) in enumerate(zip(data, expected)):
        print(f"{signal:<26}{category:<10}{np.max(np.abs(e)):9.3f}"
              + "".join(f"{diffs[m][i]:19.2e}" for m in MODES))
    print(f"fast MSBG {t_fast:7.2f} s")
    for mode in MODES:
        print(f"torch {mode:<18} {times[mode]:7.2f} s  speed_vs_fast {t_fast / times[mode]:.2f}  "
              f"max abs diff {max(diffs[mode]):.2e}")
    first = next(iter(MODES))
    print(f"torch_msbg_max_abs_diff={max(diffs[first]):.2e} speed_vs_fast={t_fast / times[first]:.2f}")


if __name__ == "__main__":
    main()

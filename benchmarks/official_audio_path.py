"""How often the two ways of bringing full-band audio to Whisper's 16 kHz give different transcripts.

    python benchmarks/official_audio_path.py --openai-checkpoint PATH [--signals 10] [--band-limited] [--layer-db -12]

The official CLIP1 recipe writes each ear as a 16-bit FLAC and lets Whisper's
``load_audio`` (ffmpeg) resample it (the project's official route does the
same); every other route resamples float audio in memory with soxr. Both are
run on the same audio with openai-whisper (the official engine; the checkpoint
given stands in for base.en offline).

The demo is stored at 16 kHz, so upsampled to 44.1 kHz it holds nothing above
8 kHz, where two good resamplers agree. Real CLIP audio is full-band 44.1 kHz
music, so by default each demo signal gets a full-band layer at 44.1 kHz:
a bright sawtooth chord pad, a hi-hat (noise bursts above 6 kHz on every
eighth note) and an exciter on the mix (harmonics of its 2..8 kHz content,
kept above 7 kHz, as sibilance and "air" are); then it is stored as 16-bit, as
the real data is. ``--band-limited`` measures the demo as stored instead.
Last line: ``transcripts_differ=K/N scores_differ=K/N``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.official_audio_path", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
from scipy.signal import butter, sawtooth, sosfilt

from code.data.audio import read_audio
from code.evaluation.asr.engines import make_engine, split_ears
from code.evaluation.asr.scoring import LyricScorer
from code.evaluation.asr.settings import ASRSettings

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"
RATE = 44100
SEED = 2026
LAYER_DB = -12.0  # the full-band layer's RMS relative to the demo signal's


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)) + 1e-12)


def full_band(audio: np.ndarray, rng: np.random.Generator, layer_db: float = LAYER_DB) -> np.ndarray:
    """``[2, T]`` band-limited audio at RATE plus a full-band music layer ``layer_db`` below it (RMS)."""
    n = audio.shape[1]
    t = np.arange(n) / RATE
    beat = 0.25 + 0.1 * rng.random()  # an eighth note, s
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    env = np.exp(-3.0 * (t % (4 * beat)))
    pad = env * sum(sawtooth(2 * np.pi * root * r * t) for r in (1, 1.26, 1.5, 2))
    noise = sosfilt(butter(4, 6000, "highpass", fs=RATE, output="sos"), rng.standard_normal(n))
    hats = noise * np.exp(-(t % beat) / 0.03)
    layer = pad / _rms(pad) + hats / _rms(hats)
    band = sosfilt(butter(4, [2000, 8000], "bandpass", fs=RATE, output="sos"), audio, axis=1)
    excited = sosfilt(butter(4, 7000, "highpass", fs=RATE, output="sos"),
                      np.tanh(4 * band / (np.max(np.abs(band)) + 1e-12)), axis=1)
    layer = layer[None] + excited / _rms(excited)
    out = audio + layer * _rms(audio) / _rms(layer) * 10 ** (layer_db / 20)
    out *= min(1.0, 0.9 / np.max(np.abs(out)))
    return np.round(out * 32768).clip(-32768, 32767).astype(np.float32) / 32768  # stored as 16-bit


def _share_above(audio: np.ndarray, hz: float) -> float:
    """Energy above ``hz`` relative to the total, dB."""
    power = np.abs(np.fft.rfft(audio, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / RATE)
    return float(10 * np.log10(power[..., freqs > hz].sum() / power.sum() + 1e-30))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openai-checkpoint", required=True, help="openai-whisper .pt file (e.g. tiny.en)")
    parser.add_argument("--signals", type=int, default=10)
    parser.add_argument("--band-limited", action="store_true",
                        help="the demo as stored (nothing above 8 kHz), without the full-band layer")
    parser.add_argument("--layer-db", type=float, default=LAYER_DB,
                        help="the full-band layer's RMS relative to the demo signal's, dB")
    args = parser.parse_args(argv)
    records = []
    for split in ("valid", "train"):
        records += [(split, r) for r in json.loads((DEMO / "metadata" / f"{split}_metadata.json").read_text())]
    records = records[: args.signals]
    engine = make_engine(ASRSettings(engine="openai-whisper", model=args.openai_checkpoint, batch_size=8))
    scorer = LyricScorer()
    rng = np.random.default_rng(SEED)
    ears = {"soxr": [], "ffmpeg": []}
    prompts, labels, above, gaps = [], [], [], []
    for split, r in records:
        audio = read_audio(DEMO / split / "signals" / f"{r['signal']}.flac", RATE)
        if not args.band_limited:
            audio = full_band(audio, rng, args.layer_db)
        above.append(_share_above(audio, 8000))
        pair = {path: split_ears(audio, RATE, audio_path=path) for path in ears}
        for path in ears:
            ears[path] += pair[path]
        gaps += [_rms(a[: len(b)] - b[: len(a)]) / _rms(b) for a, b in zip(pair["soxr"], pair["ffmpeg"])]
        prompts += [r["prompt"], r["prompt"]]
        labels += [f"{r['signal']} left ({r['hearing_loss']})", f"{r['signal']} right ({r['hearing_loss']})"]
    kind = "demo as stored (16 kHz upsampled)" if args.band_limited else f"full-band (layer at {args.layer_db:+.0f} dB)"
    print(f"{len(records)} signals, {len(prompts)} ears, 44.1 kHz, {kind}; energy above 8 kHz "
          f"{np.median(above):.1f} dB of the total (median); the two 16 kHz versions of an ear differ "
          f"by {20 * np.log10(np.median(gaps)):.1f} dB (median)")
    texts = {path: [t.text for t in engine.transcribe(e)] for path, e in ears.items()}
    scores = {path: [scorer.score(p, t).correctness for p, t in zip(prompts, texts[path])] for path in texts}
    differ = [i for i, (a, b) in enumerate(zip(texts["soxr"], texts["ffmpeg"])) if a != b]
    score_differ = [i for i in differ if abs(scores["soxr"][i] - scores["ffmpeg"][i]) > 1e-12]
    for i in differ:
        print(f"{labels[i]}, prompt: {prompts[i]}\n  ffmpeg ({scores['ffmpeg'][i]:.2f}): {texts['ffmpeg'][i].strip()}"
              f"\n  soxr   ({scores['soxr'][i]:.2f}): {texts['soxr'][i].strip()}")
    shift = [scores["soxr"][i] - scores["ffmpeg"][i] for i in score_differ]
    if shift:
        print(f"where scores differ, soxr minus ffmpeg: mean {np.mean(shift):+.3f}, "
              f"{sum(s > 0 for s in shift)} higher, {sum(s < 0 for s in shift)} lower")
    better = {path: np.maximum(v[0::2], v[1::2]) for path, v in scores.items()}
    print(f"better-ear scores (the ASR feature) differ for "
          f"{int(np.sum(np.abs(better['soxr'] - better['ffmpeg']) > 1e-12))}/{len(records)} signals")
    n = len(prompts)
    print(f"transcripts_differ={len(differ)}/{n} scores_differ={len(score_differ)}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

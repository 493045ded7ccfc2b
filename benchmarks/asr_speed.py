"""Stage 2 scoring speed: this project against a faithful re-creation of the official loop.

    python benchmarks/asr_speed.py --openai-checkpoint PATH [--signals 12] [--skip-faster]

The official CLIP1 recipe (compute_whisper.py) loops over signals; per ear it
builds a new SentenceScorer, writes the ear to a temporary 16-bit FLAC with
pyclarity's write_signal, and calls ``whisper.transcribe(path, fp16=False,
language="en", temperature=0.0)``, which decodes and resamples the file with
the ``ffmpeg`` program. Both sides score the same demo signals (converted to
44.1 kHz stereo FLAC, as the real data is) with the same model, in one run.

"Ours" is the project's official route, the one ``--asr-engine openai-whisper
--asr-model base.en`` takes (ears through ffmpeg, batched first windows), with
the checkpoint given standing in for base.en (``ASRSettings(audio_route="ffmpeg")``).
The in-memory route (soxr, what every other model gets) is timed and compared too.
Last line: ``asr_speedup=X score_agreement=Y in_memory_agreement=Z`` (X, Y: the
official route against the official loop).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.asr_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import soundfile as sf

from code.data.audio import read_audio
from code.evaluation.asr.engines import make_engine
from code.evaluation.asr.scoring import CONTRACTIONS_FILE
from code.evaluation.asr.settings import ASRSettings
from code.evaluation.cache import Store
from code.evaluation.features.extract import ScoreItem, score_audio

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"


def prepare(n: int, folder: Path) -> list[dict]:
    """Copy n demo signals (train, then valid) to 44.1 kHz stereo FLAC in ``folder``."""
    records = []
    for split in ("train", "valid"):
        for r in json.loads((DEMO / "metadata" / f"{split}_metadata.json").read_text()):
            audio = read_audio(DEMO / split / "signals" / f"{r['signal']}.flac", 44100)
            sf.write(folder / f"{r['signal']}.flac", audio.T, 44100, subtype="PCM_16")
            records.append(r)
            if len(records) == n:
                return records
    return records


def official_loop(records: list[dict], folder: Path, checkpoint: str) -> tuple[dict, float]:
    """The recipe's loop, as compute_whisper.py runs it (model load not timed)."""
    import whisper
    from clarity.utils.file_io import read_signal, write_signal
    from recipes.cad_icassp_2026.baseline.transcription_scorer import SentenceScorer

    model = whisper.load_model(checkpoint, device="cpu")
    scores = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        temp = Path(tmp) / "temp.flac"
        for r in records:
            signal = read_signal(folder / f"{r['signal']}.flac", sample_rate=44100)
            ear_scores = []
            for ear in (0, 1):
                scorer = SentenceScorer(str(CONTRACTIONS_FILE))
                write_signal(filename=temp, signal=signal[:, ear], sample_rate=44100,
                             floating_point=False)
                hyp = model.transcribe(str(temp), fp16=False, language="en", temperature=0.0)["text"]
                m = scorer.score([r["prompt"]], [hyp])
                ear_scores.append(m.hits / (m.substitutions + m.deletions + m.hits))
                temp.unlink()
            scores[r["signal"]] = max(ear_scores)
    return scores, time.perf_counter() - start


def ours(records: list[dict], folder: Path, settings: ASRSettings, cache: Path) -> tuple[dict, float]:
    """This project's Stage 2 scoring (model load not timed, as in ``official_loop``)."""
    engine = make_engine(settings)
    items = [ScoreItem(r["signal"], r["prompt"], folder / f"{r['signal']}.flac") for r in records]
    start = time.perf_counter()
    records = score_audio(items, settings=settings, store=Store(cache), split="bench", desc="ours",
                          engine=engine)
    return {s: r["score"] for s, r in records.items()}, time.perf_counter() - start


def agreement(a: dict, b: dict) -> float:
    return float(np.mean([abs(a[s] - b[s]) < 1e-9 for s in a]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openai-checkpoint", required=True,
                        help="openai-whisper model name or .pt path (both sides use it)")
    parser.add_argument("--signals", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8, help="ears per batch (ours)")
    parser.add_argument("--skip-faster", action="store_true", help="skip the faster-whisper figures")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        sys.exit("the official loop needs the ffmpeg program (Debian package ffmpeg)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        records = prepare(args.signals, folder)
        print(f"{len(records)} signals, {2 * len(records)} ears, 44.1 kHz stereo FLAC")
        reference, t_official = official_loop(records, folder, args.openai_checkpoint)
        print(f"official loop (openai-whisper): {t_official:.1f} s")
        official = ASRSettings(engine="openai-whisper", model=args.openai_checkpoint,
                               batch_size=args.batch_size, audio_route="ffmpeg")
        mine, t_ours = ours(records, folder, official, folder / "store_openai_ffmpeg")
        speedup, agree = t_official / t_ours, agreement(mine, reference)
        print(f"ours, official route (openai-whisper, ffmpeg audio, batch {args.batch_size}): "
              f"{t_ours:.1f} s  speedup {speedup:.2f}  agreement {agree:.3f}")
        in_memory = replace(official, audio_route="soxr")
        soxr_scores, t_soxr = ours(records, folder, in_memory, folder / "store_openai_soxr")
        in_memory_agree = agreement(soxr_scores, reference)
        print(f"ours, in-memory route (openai-whisper, soxr audio, batch {args.batch_size}): {t_soxr:.1f} s  "
              f"speedup {t_official / t_soxr:.2f}  agreement {in_memory_agree:.3f}"
              f"{_differing(soxr_scores, reference)}")
        if not args.skip_faster:
            for compute_type in ("int8", "float32"):
                fw = ASRSettings(engine="faster-whisper", model="tiny.en", compute_type=compute_type,
                                 batch_size=args.batch_size)
                scores, t = ours(records, folder, fw, folder / f"store_{compute_type}")
                print(f"ours (faster-whisper tiny.en {compute_type}, in-memory route, batch {args.batch_size}): "
                      f"{t:.1f} s  speedup {t_official / t:.2f}  "
                      f"agreement with official {agreement(scores, reference):.3f}")
            one = ASRSettings(engine="faster-whisper", model="tiny.en", batch_size=1)
            unbatched, t_one = ours(records, folder, one, folder / "store_float32_b1")
            print(f"faster-whisper float32: batched first windows (batch {args.batch_size}) vs ear by ear: "
                  f"{t_one / t:.2f}x  same scores {agreement(scores, unbatched):.3f}")
    print(f"asr_speedup={speedup:.2f} score_agreement={agree:.3f} in_memory_agreement={in_memory_agree:.3f}")


def _differing(scores: dict, reference: dict) -> str:
    differ = [s for s in reference if abs(scores[s] - reference[s]) >= 1e-9]
    return "".join(f"\n  {s}: official loop {reference[s]:.3f}, in memory {scores[s]:.3f}" for s in differ)


if __name__ == "__main__":
    main()

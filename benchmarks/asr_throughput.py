"""Stage 2 ASR throughput: each engine's batched ``transcribe`` against ear-by-ear transcription.

    python benchmarks/asr_throughput.py [--models tiny.en] [--device cpu|cuda] [--batch-sizes 1,2,4,8] [--ears 16]

For each engine that is installed and each model, the same demo ears (train then valid
signals, read at 44.1 kHz and split to 16 kHz ears as Stage 2 reads them) are
transcribed ear by ear by the engine's own plain call (faster-whisper's
``WhisperModel.transcribe``, ``whisper.transcribe``; the project's decoding options),
then by the engine's ``transcribe`` fed ``B`` ears at a time, for each batch size ``B``.
Both run once on a few ears first (warm-up: first-call allocations, thread pools),
model loading is not timed, and each figure is the fastest of ``--repeats`` rounds (each
round runs ear by ear and every batch size once, in turn, so load changes touch all alike).
One line per (engine, model, batch size):
``ears_per_s=X speedup=Y identical=Z max_confidence_diff=W``, where the speedup is over
ear by ear, ``identical`` says that every ear's text is the same as ear by ear, and the
largest difference of avg_logprob or no_speech_prob is shown beside it.

openai-whisper downloads names on first use; offline, pass a checkpoint with
``--openai-models PATH`` (default: ``$CLIP_OPENAI_CHECKPOINT`` when set, else ``--models``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.asr_throughput", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import importlib.util

import numpy as np

from code.data.audio import read_audio
from code.evaluation.asr.batching import FASTER_WHISPER_DECODING
from code.evaluation.asr.engines import FasterWhisperEngine, Transcript, make_engine, segment_confidence, split_ears
from code.evaluation.asr.settings import OFFICIAL_DECODING, ASRSettings, asr_label

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"
READ_RATE = 44100  # Stage 2 reads signals at 44.1 kHz (code/evaluation/features/extract.py)
WARM_UP_EARS = 2
MODULES = {"faster-whisper": "faster_whisper", "openai-whisper": "whisper"}


def demo_ears(n: int) -> list[np.ndarray]:
    """The first ``n`` ears of the demo's signals (train, then valid), as Stage 2 splits them."""
    ears: list[np.ndarray] = []
    for split in ("train", "valid"):
        for r in json.loads((DEMO / "metadata" / f"{split}_metadata.json").read_text()):
            audio = read_audio(DEMO / split / "signals" / f"{r['signal']}.flac", READ_RATE)
            ears += split_ears(audio, READ_RATE)
            if len(ears) >= n:
                return ears[:n]
    return ears


def plain(engine, ears: list[np.ndarray]) -> list[Transcript]:
    """Ear-by-ear transcription by the engine's library itself (no batching)."""
    out = []
    for ear in ears:
        if isinstance(engine, FasterWhisperEngine):
            segments = list(engine.model.transcribe(ear, **FASTER_WHISPER_DECODING)[0])
            out.append(Transcript("".join(s.text for s in segments), *segment_confidence(segments)))
        else:
            import whisper

            result = whisper.transcribe(engine.model, ear, **OFFICIAL_DECODING)
            out.append(Transcript(result["text"], *segment_confidence(result["segments"])))
    return out


def batched(engine, ears: list[np.ndarray], batch_size: int) -> list[Transcript]:
    """The engine's ``transcribe``, given ``batch_size`` ears at a time (as Stage 2 gives
    it its batches)."""
    return [t for i in range(0, len(ears), batch_size) for t in engine.transcribe(ears[i: i + batch_size])]


def fastest(runs: dict, repeats: int) -> dict:
    """Each of ``runs``'s functions' result and fastest wall time over ``repeats`` rounds,
    ``{key: (result, seconds)}``. Each round runs every function once, in turn, so a
    change in the machine's load during the benchmark touches all of them alike."""
    best: dict = {}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
            if key not in best or seconds < best[key][1]:
                best[key] = (result, seconds)
    return best


def max_confidence_diff(a: list[Transcript], b: list[Transcript]) -> float:
    diffs = [abs(getattr(x, k) - getattr(y, k)) for x, y in zip(a, b)
             for k in ("avg_logprob", "no_speech_prob")
             if not (math.isnan(getattr(x, k)) and math.isnan(getattr(y, k)))]
    return max(diffs, default=0.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny.en", help="comma-separated Whisper models (names or paths)")
    parser.add_argument("--openai-models", default=os.environ.get("CLIP_OPENAI_CHECKPOINT", ""),
                        help="comma-separated openai-whisper models (names or .pt paths) in place of "
                             "--models (default: $CLIP_OPENAI_CHECKPOINT when set)")
    parser.add_argument("--engines", default="faster-whisper,openai-whisper",
                        help="comma-separated engines (those not installed are skipped)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    parser.add_argument("--compute-type", default="float32", help="faster-whisper compute type")
    parser.add_argument("--batch-sizes", default="1,2,4,8", help="comma-separated ears per batch")
    parser.add_argument("--ears", type=int, default=16, help="demo ears transcribed")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds timed, each running every variant once (the fastest counts)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}")
    if min(sizes) < 1 or args.ears < 1 or args.repeats < 1:
        parser.error("--batch-sizes, --ears and --repeats must be at least 1")

    ears = demo_ears(args.ears)
    seconds = sum(len(e) for e in ears) / 16000
    print(f"{len(ears)} demo ears, {seconds:.1f} s of audio, device {args.device}")
    for name in args.engines.split(","):
        if importlib.util.find_spec(MODULES[name]) is None:
            print(f"engine={name} skipped (not installed)")
            continue
        models = args.openai_models if name == "openai-whisper" and args.openai_models else args.models
        for model in models.split(","):
            settings = ASRSettings(engine=name, model=model, device=args.device,
                                   compute_type=args.compute_type, batch_size=max(sizes))
            engine = make_engine(settings)
            plain(engine, ears[:WARM_UP_EARS])
            batched(engine, ears[:WARM_UP_EARS], WARM_UP_EARS)
            label = f"engine={name} model={asr_label(model)} device={args.device}"
            runs = {0: lambda: plain(engine, ears)}  # key 0: ear by ear; else the batch size
            runs.update({size: (lambda size=size: batched(engine, ears, size)) for size in sizes})
            timed = fastest(runs, args.repeats)
            reference, t_plain = timed[0]
            print(f"{label} ear_by_ear ears_per_s={len(ears) / t_plain:.2f} ({t_plain:.2f} s)", flush=True)
            for size in sizes:
                got, t = timed[size]
                identical = [g.text for g in got] == [r.text for r in reference]
                print(f"{label} batch_size={size} ears_per_s={len(ears) / t:.2f} speedup={t_plain / t:.2f} "
                      f"identical={identical} max_confidence_diff={max_confidence_diff(got, reference):.1e}",
                      flush=True)


if __name__ == "__main__":
    main()

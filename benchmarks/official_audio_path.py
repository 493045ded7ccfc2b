"""How often the two ways of bringing audio to Whisper's 16 kHz give different transcripts.

    python benchmarks/official_audio_path.py --openai-checkpoint PATH [--signals 20]

The official CLIP1 recipe writes each ear as a 16-bit FLAC and lets Whisper's
``load_audio`` (ffmpeg) resample it; this project resamples float audio in
memory with soxr. Both are run on the same demo signals with openai-whisper
(the official engine; the checkpoint given stands in for base.en offline).
Last line: ``transcripts_differ=K/N scores_differ=K/N``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.official_audio_path", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import json

from code.data_loading import read_audio
from code.evaluation.asr import ASRSettings, make_engine, split_ears
from code.evaluation.scoring import LyricScorer

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openai-checkpoint", required=True, help="openai-whisper .pt file (e.g. tiny.en)")
    parser.add_argument("--signals", type=int, default=20)
    args = parser.parse_args(argv)
    records = []
    for split in ("valid", "train"):
        records += [(split, r) for r in json.loads((DEMO / "metadata" / f"{split}_metadata.json").read_text())]
    records = records[: args.signals]
    engine = make_engine(ASRSettings(engine="openai-whisper", model=args.openai_checkpoint, batch_size=8))
    scorer = LyricScorer()
    ears = {"soxr": [], "ffmpeg": []}
    prompts = []
    for split, r in records:
        audio = read_audio(DEMO / split / "signals" / f"{r['signal']}.flac", 44100)
        for path in ears:
            ears[path] += split_ears(audio, 44100, audio_path=path)
        prompts += [r["prompt"], r["prompt"]]
    texts = {path: [t.text for t in engine.transcribe(e)] for path, e in ears.items()}
    differ = sum(a != b for a, b in zip(texts["soxr"], texts["ffmpeg"]))
    scores = {path: [scorer.score(p, t).correctness for p, t in zip(prompts, texts[path])] for path in texts}
    score_differ = sum(abs(a - b) > 1e-12 for a, b in zip(scores["soxr"], scores["ffmpeg"]))
    for a, b in zip(texts["soxr"], texts["ffmpeg"]):
        if a != b:
            print(f"soxr:   {a}\nffmpeg: {b}\n")
    n = len(prompts)
    print(f"transcripts_differ={differ}/{n} scores_differ={score_differ}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

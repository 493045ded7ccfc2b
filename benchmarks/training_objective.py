"""How well the training objective ranks signals by the real chain's word correctness.

    python benchmarks/training_objective.py [--openai-checkpoint PATH] [--splits train,valid]

For every demo signal as its listener heard it (``signals``: the unprocessed mix through
MSBG with the category's audiogram, i.e. the chain's audio for ``identity``): the objective
(``code.training.objective.WhisperObjective``: teacher-forced mean log-probability of "speech
is heard" and of the lyric line's tokens) in six variants (Whisper's 30 s window, the short
training window, or the short window without the speech event; better ear or the mean of the
ears), and the chain's better-ear words correct (``--words-correct``:
the pipeline's own Stage-2 features, faster-whisper; else an openai-whisper greedy transcript
of each ear, scored by the official CLIP1 scorer). Prints Spearman's rho
(and Kendall's tau) of each variant against the words correct, and against the SYNTHETIC
listener labels. "No Loss" signals are included (they heard the unprocessed audio).
Last line: ``objective_spearman=X`` for the variant training uses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.training_objective", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import scipy.stats
import soxr
import torch

from code.config import WHISPER_SAMPLE_RATE
from code.data.audio import read_audio
from code.training.objective import WhisperObjective, resample_to_16k
from code.training.train import TRAIN_WINDOW_S

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "shared/models/openai-whisper-tiny.en.pt"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openai-checkpoint", default=os.environ.get("CLIP_OPENAI_CHECKPOINT", str(DEFAULT_CHECKPOINT)))
    parser.add_argument("--data-root", default="data/demo/cadenza_data")
    parser.add_argument("--splits", default="train,valid")
    parser.add_argument("--words-correct", default="",
                        help="feature files (JSONL, comma-separated) whose asr.<model>.better_ear is the chain's "
                             "words correct for their signals (e.g. the pipeline's fit-set features); others are "
                             "transcribed here with openai-whisper")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    import recipes.cad_icassp_2026.baseline as recipe
    from recipes.cad_icassp_2026.baseline import transcription_scorer

    scorer = transcription_scorer.SentenceScorer(str(Path(recipe.__file__).parent / "contractions.csv"))
    objectives = {"30s": WhisperObjective(args.openai_checkpoint),
                  "short": WhisperObjective(args.openai_checkpoint, window_s=TRAIN_WINDOW_S),
                  "short-tokens-only": WhisperObjective(args.openai_checkpoint, window_s=TRAIN_WINDOW_S,
                                                        speech_event=False)}
    whisper_model = objectives["30s"].whisper
    chain = {}
    for path in filter(None, args.words_correct.split(",")):
        for line in Path(path).read_text().splitlines():
            entry = json.loads(line)
            column = next((k for k in entry if k.startswith("asr.") and k.endswith(".better_ear")), None)
            if column is not None and entry[column] is not None:
                chain[entry["signal"]] = float(entry[column])
    rows = []
    start = time.time()
    for split in args.splits.split(","):
        meta = json.loads((Path(args.data_root) / "metadata" / f"{split}_metadata.json").read_text())
        for record in meta:
            audio = torch.from_numpy(read_audio(Path(args.data_root) / split / "signals" / f"{record['signal']}.flac", 44100))
            line = record.get("original_prompt") or record["prompt"]
            row = {"signal": record["signal"], "label": record["correctness"], "hl": record["hearing_loss"]}
            with torch.no_grad():
                for name, objective in objectives.items():
                    audio16 = resample_to_16k(audio, 44100)
                    ears = objective.ear_scores(audio16, [line, line])
                    row[f"{name}.better"], row[f"{name}.mean"] = float(ears.max()), float(ears.mean())
            if record["signal"] in chain:
                rows.append({**row, "words_correct": chain[record["signal"]]})
                print(json.dumps(rows[-1]), flush=True)
                continue
            scores = []
            for ear in audio:
                a16 = soxr.resample(ear.numpy().astype(np.float32), 44100, WHISPER_SAMPLE_RATE)
                text = whisper_model.transcribe(a16, language="en", temperature=0.0, fp16=False)["text"]
                m = scorer.score([record["prompt"]], [text])
                total = m.hits + m.substitutions + m.deletions
                scores.append(m.hits / total if total else 0.0)
            row["words_correct"] = max(scores)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"{len(rows)} signals in {time.time() - start:.0f} s")
    wc = np.array([r["words_correct"] for r in rows])
    labels = np.array([r["label"] for r in rows])
    for name in [f"{objective}.{ears}" for objective in objectives for ears in ("better", "mean")]:
        values = np.array([r[name] for r in rows])
        rho = scipy.stats.spearmanr(values, wc).statistic
        tau = scipy.stats.kendalltau(values, wc).statistic
        rho_l = scipy.stats.spearmanr(values, labels).statistic
        print(f"objective={name} spearman_vs_words_correct={rho:.3f} kendall={tau:.3f} "
              f"spearman_vs_labels={rho_l:.3f} n={len(rows)}")
    rho_wl = scipy.stats.spearmanr(wc, labels).statistic
    print(f"words_correct spearman_vs_labels={rho_wl:.3f}")
    values = np.array([r["short.mean"] for r in rows])
    print(f"objective_spearman={scipy.stats.spearmanr(values, wc).statistic:.3f}")


if __name__ == "__main__":
    main()

"""Build the small CLIP2-layout demo under data/demo_clip2/ from the CLIP1 demo.

    python scripts/make_demo_clip2.py [--source data/demo] [--out data/demo_clip2]

Writes ``<out>/cadenza_data/clip2/{metadata,train,valid}`` in the CLIP2 format
(``../shared/CLIP2_METADATA.md``): training records without ``fma``,
``original_response``, ``response`` and ``words_correct`` but with
``phoneme_correctness``, the listener responses in ``train_responses.json``,
and unlabelled validation records. The audio files are copies of a subset of
the CLIP1 demo's (whole prompts, so calibration folds by prompt still work).

All labels are SYNTHETIC: ``correctness`` is the CLIP1 demo's synthetic value
and ``phoneme_correctness`` a fixed function of it (see ``phoneme_hits``).
Rerun after regenerating the CLIP1 demo; the output is replaced.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    os.execve(sys.executable, [sys.executable, "-m", "scripts.make_demo_clip2", *sys.argv[1:]], env)

from code.config import INPUT_KINDS
from code.data.layout import SplitLayout, locate_split
from code.data.metadata import load_metadata
from code.data.synthetic import write_marker
from code.io_utils import replaced_folder, write_text_atomic

logger = logging.getLogger(__name__)

TRAIN_PROMPTS = 8  # whole prompts taken from the CLIP1 demo's training split (>= 5 folds)
TRAIN_PER_PROMPT = 2  # hearing-loss versions kept per training prompt (categories rotate)
VALID_PROMPTS = 2
MAX_BYTES = 3_000_000  # keep the demo small
README = """# CLIP2-layout demo (SYNTHETIC)

Made by `python scripts/make_demo_clip2.py` from the CLIP1 demo in `data/demo` (same audio
files, a subset). Layout and fields follow the CLIP2 release (`cadenza_data/clip2/...`,
`train_responses.json`, unlabelled `valid`).

Every label is SYNTHETIC, not listener data: `correctness` is the CLIP1 demo's synthetic value,
`phoneme_correctness` = phoneme_hits / n_phonemes with n_phonemes = letters in the prompt and
phoneme_hits = round(n_phonemes * (0.2 + 0.8 * correctness)). Figures on this demo prove the
mechanics only, never quality.
"""


def phoneme_hits(prompt: str, correctness: float) -> tuple[int, int]:
    """SYNTHETIC (hits, total) phonemes: letters of the prompt stand in for phonemes,
    and a listener gets more phonemes than whole words right."""
    total = sum(ch.isalpha() for ch in prompt)
    return round(total * (0.2 + 0.8 * correctness)), total


def _by_prompt(records: list[dict]) -> list[list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["prompt"], []).append(r)
    return list(groups.values())


def pick_train(records: list[dict]) -> list[dict]:
    """``TRAIN_PER_PROMPT`` records of each of the first ``TRAIN_PROMPTS`` prompts,
    starting at a category that rotates with the prompt."""
    picked = []
    for i, group in enumerate(_by_prompt(records)[:TRAIN_PROMPTS]):
        picked += [group[(i + j) % len(group)] for j in range(min(TRAIN_PER_PROMPT, len(group)))]
    return picked


def pick_valid(records: list[dict]) -> list[dict]:
    """Every record of the first ``VALID_PROMPTS`` prompts."""
    return [r for group in _by_prompt(records)[:VALID_PROMPTS] for r in group]


def clip2_train(records: list[dict]) -> tuple[list[dict], dict[str, list[dict]]]:
    """CLIP1 training records -> CLIP2 training metadata and ``train_responses.json``."""
    metadata, responses = [], {}
    for r in records:
        hits, total = phoneme_hits(r["prompt"], r["correctness"])
        words_correct = r.get("words_correct", round(r["correctness"] * r["n_words"]))
        metadata.append({
            "signal": r["signal"], "original_prompt": r["original_prompt"], "prompt": r["prompt"],
            "n_words": r["n_words"], "correctness": r["correctness"],
            "phoneme_correctness": hits / total, "hearing_loss": r["hearing_loss"]})
        responses[r["signal"]] = [{
            "response_id": "Score1", "original_response": r.get("original_response", ""),
            "response": r.get("response", ""), "hits": words_correct,
            "correctness": r["correctness"], "phoneme_hits": hits,
            "phoneme_correctness": hits / total}]
    return metadata, responses


def clip2_valid(records: list[dict]) -> list[dict]:
    """CLIP1 records -> unlabelled CLIP2 validation metadata."""
    keep = ("signal", "original_prompt", "prompt", "n_words", "hearing_loss")
    return [{k: r[k] for k in keep} for r in records]


def _copy_audio(source: SplitLayout, target: Path, records: list[dict]) -> int:
    size = 0
    for r in records:
        for kind in INPUT_KINDS:
            src = source.audio_path(r["signal"], kind)
            dst = target / kind / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            size += dst.stat().st_size
    return size


def build(source: Path, out: Path) -> int:
    """Write the CLIP2 demo under ``out``; return its audio size in bytes. The demo is built
    in a new folder and swapped in only when complete: an interruption leaves the old one."""
    train_layout = locate_split(source, "train", challenge="clip1")
    valid_layout = locate_split(source, "valid", challenge="clip1")
    train = pick_train(load_metadata(train_layout.metadata_file))
    valid = pick_valid(load_metadata(valid_layout.metadata_file))
    metadata, responses = clip2_train(train)
    files = {"train_metadata.json": metadata, "train_responses.json": responses,
             "valid_metadata.json": clip2_valid(valid)}
    store = Path(source) / "cadenza_data" / "stage2_store"  # the same audio: the source's shipped values
    with replaced_folder(out / "cadenza_data" / "clip2") as base:
        (base / "metadata").mkdir(parents=True)
        for name, obj in files.items():
            (base / "metadata" / name).write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        write_marker(base / "metadata")  # the labels are made up: every tool that prints figures says so
        size = _copy_audio(train_layout, base / "train", train) + _copy_audio(valid_layout, base / "valid", valid)
        if store.is_dir():
            (base / "stage2_store").symlink_to(os.path.relpath(store.resolve(), (out / "cadenza_data" / "clip2").resolve()),
                                               target_is_directory=True)
    write_text_atomic(out / "README.md", README)
    logger.info("CLIP2 demo: %d train, %d valid signals, %.2f MB of audio -> %s",
                len(train), len(valid), size / 1e6, out / "cadenza_data" / "clip2")
    if size > MAX_BYTES:
        logger.warning("the CLIP2 demo is larger than %.1f MB; lower TRAIN_PROMPTS", MAX_BYTES / 1e6)
    return size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=Path("data/demo"), help="the CLIP1 demo")
    parser.add_argument("--out", type=Path, default=Path("data/demo_clip2"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.source, args.out)


if __name__ == "__main__":
    main()

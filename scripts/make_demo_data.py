"""Regenerate the shipped demo dataset under data/demo/ (CLIP release layout).

    python scripts/make_demo_data.py [--out data/demo]

Needs espeak-ng (Debian package ``espeak-ng``) for the voice; nothing at run
time needs it. The output is deterministic for a given espeak-ng build.

Each excerpt is a lyric line spoken by espeak-ng over a synthetic chord
accompaniment (voice-to-music ratio varies per signal), stereo. The
``unprocessed`` file is that mix; the ``signals`` file is the mix passed
through pyclarity's MSBG hearing-loss simulator with the listener category's
audiogram ("No Loss": unchanged). Both are stored as 16 kHz FLAC to keep the
repository small; the loader resamples them to 44.1 kHz.

The training ``correctness`` labels are SYNTHETIC: a deterministic function
of the hearing-loss category and the voice-to-music ratio, not listener data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    os.execve(sys.executable, [sys.executable, "-m", "scripts.make_demo_data", *sys.argv[1:]], env)

import numpy as np
import soundfile as sf
import soxr

from code.hearing_loss import simulate_hearing_loss
from code.models.hearing_aid_models import DEFAULT_AUDIOGRAMS

SAMPLE_RATE = 44100
STORED_RATE = 16000
CATEGORIES = ("No Loss", "Mild", "Moderate")
SEED = 20260

# (original_prompt, prompt): original lines written for this demo.
TRAIN_PROMPTS = [
    ("The river runs forever to the sea", "the river runs forever to the sea"),
    ("I'll wait for you under the silver moon", "i will wait for you under the silver moon"),
    ("Dancing all night in the city lights", "dancing all night in the city lights"),
    ("Hold my hand and never let me go", "hold my hand and never let me go"),
    ("The morning sun is shining on my window", "the morning sun is shining on my window"),
    ("We were young and the summer was long", "we were young and the summer was long"),
    ("Call my name when the rain begins to fall", "call my name when the rain begins to fall"),
    ("Every road will lead me back home to you", "every road will lead me back home to you"),
    ("Nobody knows the way my heart is beating", "nobody knows the way my heart is beating"),
    ("Sing it loud so the whole world can hear", "sing it loud so the whole world can hear"),
]
VALID_PROMPTS = [
    ("There's a fire burning deep inside of me", "there is a fire burning deep inside of me"),
    ("Tomorrow we will fly across the open sky", "tomorrow we will fly across the open sky"),
    ("I can hear the music calling out my name", "i can hear the music calling out my name"),
]
VOICES = ["en-us", "en-gb", "en-us+f2", "en-gb+m3"]
BASE_CORRECTNESS = {"No Loss": 0.9, "Mild": 0.65, "Moderate": 0.4}


def speak(text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng speech as float64 mono at SAMPLE_RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed),
                        "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float64")
    audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return audio / (np.max(np.abs(audio)) + 1e-12)


def accompaniment(n: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo chord loop (triads with harmonics, decaying per beat, plus bass)."""
    t = np.arange(n) / SAMPLE_RATE
    roots = [261.63, 220.0, 174.61, 196.0]  # C, Am, F, G
    beat = 0.5 + 0.25 * rng.random()
    music = np.zeros((2, n))
    for i, start in enumerate(np.arange(0, n / SAMPLE_RATE, 4 * beat)):
        root = roots[i % len(roots)]
        seg = (t >= start) & (t < start + 4 * beat)
        local = t[seg] - start
        env = np.exp(-1.5 * (local % beat))
        chord = sum(np.sin(2 * np.pi * f * local) + 0.3 * np.sin(4 * np.pi * f * local)
                    for f in (root, root * 1.26, root * 1.5))
        bass = np.sin(2 * np.pi * root / 2 * local)
        music[0, seg] = env * (0.8 * chord + 0.6 * bass)
        music[1, seg] = env * (0.6 * chord + 0.8 * bass)
    return music / (np.max(np.abs(music)) + 1e-12)


def mix(voice: np.ndarray, music: np.ndarray, vmr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo mix with the given voice-to-music RMS ratio, peak 0.5."""
    lead = int(0.3 * SAMPLE_RATE)
    n = voice.shape[0] + 2 * lead
    v = np.zeros(n)
    v[lead: lead + voice.shape[0]] = voice
    m = music[:, :n]
    gain = np.sqrt(np.mean(v ** 2) / np.mean(m ** 2)) * 10 ** (-vmr_db / 20)
    pan = 0.1 * rng.standard_normal(2)
    out = np.stack([v * (1 + pan[0]), v * (1 + pan[1])]) + gain * m
    return 0.5 * out / np.max(np.abs(out))


def synthetic_correctness(category: str, vmr_db: float, n_words: int) -> tuple[int, float]:
    """SYNTHETIC label: deterministic in category and voice-to-music ratio."""
    p = BASE_CORRECTNESS[category] + 0.03 * (vmr_db - 3.0)
    words = int(round(np.clip(p, 0.0, 1.0) * n_words))
    return words, words / n_words


def write_flac(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = soxr.resample(audio.T, SAMPLE_RATE, STORED_RATE)
    sf.write(path, np.clip(stored, -1, 1), STORED_RATE, subtype="PCM_16", format="FLAC")


def build_split(out: Path, split: str, prompts: list, rng: np.random.Generator) -> list[dict]:
    records = []
    for k, (original, prompt) in enumerate(prompts):
        voice = speak(original, VOICES[k % len(VOICES)], pitch=int(rng.integers(35, 70)),
                      speed=int(rng.integers(140, 175)))
        voice = voice[: int(5.4 * SAMPLE_RATE)]
        for category in CATEGORIES:
            signal = "".join(rng.choice(list("0123456789abcdef"), 24))
            vmr_db = float(rng.uniform(-6.0, 12.0))
            unprocessed = mix(voice, accompaniment(voice.shape[0] + SAMPLE_RATE, rng), vmr_db, rng)
            heard = simulate_hearing_loss(unprocessed, DEFAULT_AUDIOGRAMS[category])
            write_flac(out / split / "unprocessed" / f"{signal}_unproc.flac", unprocessed)
            write_flac(out / split / "signals" / f"{signal}.flac", heard)
            n_words = len(prompt.split())
            record = {"signal": signal, "original_prompt": original, "prompt": prompt,
                      "n_words": n_words, "hearing_loss": category}
            if split == "train":
                words, correctness = synthetic_correctness(category, vmr_db, n_words)
                kept = prompt.split()[:words]
                record.update({"fma": f"{k:06d}", "original_response": " ".join(kept) or "#",
                               "response": " ".join(kept), "words_correct": words,
                               "correctness": correctness})
            records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed to regenerate the demo data: apt-get install espeak-ng")
    base = args.out / "cadenza_data"
    if base.exists():
        shutil.rmtree(base)
    rng = np.random.default_rng(SEED)
    for split, prompts in (("train", TRAIN_PROMPTS), ("valid", VALID_PROMPTS)):
        records = build_split(base, split, prompts, rng)
        meta = base / "metadata" / f"{split}_metadata.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        print(f"{split}: {len(records)} signals -> {meta}")


if __name__ == "__main__":
    main()

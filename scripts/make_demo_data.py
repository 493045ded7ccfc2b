"""Regenerate the shipped demo dataset under data/demo/ (CLIP release layout).

    python scripts/make_demo_data.py [--out data/demo] [--prompts N]

Needs espeak-ng (Debian package ``espeak-ng``) for the voices; nothing at run
time needs it. The output is deterministic for a given espeak-ng build.

Audio. Each excerpt is a lyric line spoken by espeak-ng over an accompaniment
of synthetic chords plus a babble layer (time-reversed espeak-ng speech of
other lines by four other voices: voice-band energy that masks speech but
carries no words). The voice-to-accompaniment ratio (VMR) is spread evenly
over ``VMR_RANGE_DB`` within each split, from where words drown to where
they are plain. The mix is presented at ``PRESENTATION_DBFS`` RMS, about
65 dB SPL in the project's MSBG calibration (``equiv_0db_spl`` 100 + ``ahr``
20: 0 dB FS = 120 dB SPL), so the Mild and especially the Moderate audiogram
leave parts of the voice (its high frequencies) inaudible. The ``unprocessed`` file is the
mix; the ``signals`` file is the mix passed through pyclarity's reference
MSBG simulator with the listener category's audiogram ("No Loss":
unchanged). Both are stored as 16 kHz FLAC to keep the repository small; the
loader resamples them to 44.1 kHz.

Labels. Every record (train and valid, as in CLIP1 metadata v1.2) has
SYNTHETIC listener fields, drawn from a listener model fixed in advance from
the construction alone (never from any ASR output or prediction): each word
is heard with probability

    p = 1 / (1 + exp(-(VMR - midpoint[category] - listener_offset) / SLOPE_DB))

where ``midpoint`` is the VMR at which an average listener of that category
hears half the words (higher for more loss: less audibility at 65 dB SPL),
and ``listener_offset`` ~ N(0, LISTENER_SD_DB) is one listener's own
deviation. Each word is then heard or not (Bernoulli); the response is the
heard words in order, ``words_correct`` their count, ``correctness`` =
``words_correct / n_words``. These labels prove the machinery, never quality.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    os.execve(sys.executable, [sys.executable, "-m", "scripts.make_demo_data", *sys.argv[1:]], env)

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from code.data.synthetic import write_marker
from code.hearing_loss.simulator import SIMULATORS, simulate_hearing_loss
from code.io_utils import replaced_folder
from code.models.audiograms import DEFAULT_AUDIOGRAMS

logger = logging.getLogger("make_demo_data")

# --- knobs --------------------------------------------------------------------
SAMPLE_RATE = 44100          # construction and MSBG rate
STORED_RATE = 16000          # FLAC files as shipped
CATEGORIES = ("No Loss", "Mild", "Moderate")
SEED = 20261
VMR_RANGE_DB = (-12.0, 18.0)  # voice-to-accompaniment RMS ratio, spread evenly per split
BABBLE_TO_CHORDS_DB = 3.0    # babble layer RMS relative to the chords
BABBLE_TALKERS = 4
PRESENTATION_DBFS = -55.0    # mix RMS: ~65 dB SPL in MSBG's calibration (0 dB FS = 120 dB SPL)
LEAD_S = 0.25                # accompaniment alone before and after the voice
# The synthetic listener model (see the module docstring). Fixed from the construction:
# normal-hearing listeners get half the words of a line at about -3 dB VMR in babble-like
# masking; mild and moderate losses at 65 dB SPL need about 3 and 7 dB more.
LISTENER_MIDPOINT_DB = {"No Loss": -3.0, "Mild": 0.0, "Moderate": 4.0}
SLOPE_DB = 2.5               # logistic scale: ~10 % more words per dB around the midpoint
LISTENER_SD_DB = 3.0         # one listener's deviation from the category's average

# (original_prompt, prompt): original lines written for this demo.
TRAIN_PROMPTS = [
    ("The river runs forever to the sea", "the river runs forever to the sea"),
    ("I'll wait for you under the silver moon", "i will wait for you under the silver moon"),
    ("Dancing all night in the city lights", "dancing all night in the city lights"),
    ("Hold my hand and never let me go", "hold my hand and never let me go"),
    ("The morning sun is shining on my window", "the morning sun is shining on my window"),
    ("We were young and the summer was long", "we were young and the summer was long"),
    ("Call my name when the rain begins to fall", "call my name when the rain begins to fall"),
    ("Every road will lead me back home", "every road will lead me back home"),
    ("Nobody knows the way my heart is beating", "nobody knows the way my heart is beating"),
    ("Sing it loud so the whole world can hear", "sing it loud so the whole world can hear"),
    ("Paper boats are sailing down the street", "paper boats are sailing down the street"),
    ("She painted stars across the kitchen wall", "she painted stars across the kitchen wall"),
    ("Don't look back at the burning bridge", "do not look back at the burning bridge"),
    ("Give me one more reason to stay", "give me one more reason to stay"),
    ("The train is leaving at the break of day", "the train is leaving at the break of day"),
    ("My old guitar remembers every song", "my old guitar remembers every song"),
    ("Winter wind is knocking at the door", "winter wind is knocking at the door"),
    ("We can build a castle made of sand", "we can build a castle made of sand"),
    ("You're the light that keeps me warm", "you are the light that keeps me warm"),
    ("Golden fields are waving in the breeze", "golden fields are waving in the breeze"),
    ("Take the long way round the mountain", "take the long way round the mountain"),
    ("Little bird is singing on the wire", "little bird is singing on the wire"),
    ("I've been counting every wave tonight", "i have been counting every wave tonight"),
    ("Open the window and let the music in", "open the window and let the music in"),
    ("The clock keeps ticking but my heart stands still",
     "the clock keeps ticking but my heart stands still"),
]
VALID_PROMPTS = [
    ("There's a fire burning deep inside of me", "there is a fire burning deep inside of me"),
    ("Tomorrow we will fly across the open sky", "tomorrow we will fly across the open sky"),
    ("I can hear the music calling out my name", "i can hear the music calling out my name"),
    ("Silver rain is falling on the town", "silver rain is falling on the town"),
    ("Meet me where the highway ends", "meet me where the highway ends"),
    ("We danced until the candles burned away", "we danced until the candles burned away"),
    ("Nothing ever shines as bright as you", "nothing ever shines as bright as you"),
    ("Run with me across the frozen lake", "run with me across the frozen lake"),
]
# Lines never sung, reversed into babble (so the babble holds no real words).
BABBLE_LINES = [
    "a quiet harbour waits behind the hill for every tired sailor",
    "bright coins rolled under the table while the band was tuning",
    "seven horses crossed the valley before the thunder came",
    "the baker sold his bread to the children in the square",
    "letters from the coast arrived in bundles every spring",
    "grey clouds gathered over the old stone bridge at noon",
]
VOICES = ["en-us", "en-gb", "en-us+f2", "en-gb+m3", "en-us+m1", "en-gb+f3"]
BABBLE_VOICES = ["en-us+m3", "en-gb+f2", "en-us+f4", "en-gb+m1", "en-us+m5", "en-gb+f1"]


def speak(text: str, voice: str, *, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng speech as float64 mono at SAMPLE_RATE, peak 1.

    Raises:
        subprocess.CalledProcessError: when espeak-ng fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed),
                        "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float64")
    audio = soxr.resample(audio, rate, SAMPLE_RATE)
    active = np.flatnonzero(np.abs(audio) > 1e-3 * np.max(np.abs(audio)))
    audio = audio[active[0]: active[-1] + 1]  # trim espeak's leading/trailing silence
    return audio / (np.max(np.abs(audio)) + 1e-12)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)))


def chords(n: int, rng: np.random.Generator) -> np.ndarray:
    """A stereo chord loop (triads with harmonics, decaying per beat, plus bass), RMS 1."""
    t = np.arange(n) / SAMPLE_RATE
    roots = np.array([261.63, 220.0, 174.61, 196.0]) * 2 ** (rng.integers(-3, 4) / 12)
    beat = 0.4 + 0.2 * rng.random()
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
        music[1, seg] = env * (0.7 * chord + 0.7 * bass)
    return music / _rms(music)


def babble(n: int, pool: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Mono babble of BABBLE_TALKERS reversed utterances from ``pool``, looped, RMS 1."""
    out = np.zeros(n)
    for k in rng.choice(len(pool), BABBLE_TALKERS, replace=False):
        talker = pool[k][::-1]
        talker = np.tile(talker, n // talker.shape[0] + 2)
        start = int(rng.integers(0, pool[k].shape[0]))
        out += talker[start: start + n] / _rms(pool[k])
    return out / _rms(out)


def mix(voice: np.ndarray, pool: list[np.ndarray], vmr_db: float,
        rng: np.random.Generator) -> np.ndarray:
    """Stereo mix ``[2, T]``: voice over chords + babble at ``vmr_db``, RMS at PRESENTATION_DBFS."""
    lead = int(LEAD_S * SAMPLE_RATE)
    n = voice.shape[0] + 2 * lead
    v = np.zeros(n)
    v[lead: lead + voice.shape[0]] = voice
    layer = babble(n, pool, rng) * 10 ** (BABBLE_TO_CHORDS_DB / 20)
    accompaniment = chords(n, rng) + np.stack([layer, layer])
    gain = _rms(v) / _rms(accompaniment) * 10 ** (-vmr_db / 20)
    pan = 1 + 0.05 * rng.standard_normal(2)
    out = np.stack([v * pan[0], v * pan[1]]) + gain * accompaniment
    return out * (10 ** (PRESENTATION_DBFS / 20) / _rms(out))


def listen(prompt: str, category: str, vmr_db: float,
           rng: np.random.Generator) -> tuple[list[str], float]:
    """SYNTHETIC listener: the prompt's words this listener heard, and their p per word."""
    offset = rng.normal(0.0, LISTENER_SD_DB)
    p = 1 / (1 + np.exp(-(vmr_db - LISTENER_MIDPOINT_DB[category] - offset) / SLOPE_DB))
    words = prompt.split()
    heard = rng.random(len(words)) < p
    return [w for w, h in zip(words, heard) if h], float(p)


def _simulate(audio: np.ndarray, category: str, simulator: str) -> np.ndarray:
    """MSBG through the project's wrapper (``simulator``: "reference" = pyclarity's ``Ear``)."""
    return simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS[category], simulator=simulator)


def write_flac(path: Path, audio: np.ndarray) -> None:
    """``[2, T]`` at SAMPLE_RATE -> 16-bit FLAC at STORED_RATE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = soxr.resample(audio.T, SAMPLE_RATE, STORED_RATE)
    sf.write(path, np.clip(stored, -1, 1), STORED_RATE, subtype="PCM_16", format="FLAC")


def make_signal(out: Path, split: str, prompt_pair: tuple[str, str], fma: int, c: int,
                vmr_db: float, pool: list[np.ndarray], simulator: str) -> dict:
    """Write one excerpt's two files; return its metadata record (CLIP1 v1.2 fields)."""
    original, prompt = prompt_pair
    voice_rng = np.random.default_rng([SEED, fma])
    voice = speak(original, VOICES[fma % len(VOICES)],
                  pitch=int(voice_rng.integers(35, 70)), speed=int(voice_rng.integers(150, 180)))
    rng = np.random.default_rng([SEED, fma, c])
    signal = "".join(rng.choice(list("0123456789abcdef"), 24))
    category = CATEGORIES[c]
    unprocessed = mix(voice, pool, vmr_db, rng)
    write_flac(out / split / "unprocessed" / f"{signal}_unproc.flac", unprocessed)
    write_flac(out / split / "signals" / f"{signal}.flac", _simulate(unprocessed, category, simulator))
    heard, _ = listen(prompt, category, vmr_db, rng)
    response = " ".join(heard)
    return {
        "signal": signal, "fma": f"{fma:06d}", "original_prompt": original,
        "prompt": prompt, "original_response": response.capitalize() or "#",
        "response": response, "n_words": len(prompt.split()), "words_correct": len(heard),
        "correctness": len(heard) / len(prompt.split()), "hearing_loss": category,
    }


def build_split(out: Path, split: str, prompts: list, first_fma: int,
                pool: list[np.ndarray], *, jobs: int, simulator: str) -> list[dict]:
    """Write one split's audio; return its metadata records, prompt by prompt."""
    split_rng = np.random.default_rng([SEED, first_fma])
    n = len(prompts) * len(CATEGORIES)
    lo, hi = VMR_RANGE_DB
    vmrs = lo + (hi - lo) * (split_rng.permutation(n) + split_rng.random(n)) / n  # stratified
    todo = [(k, c) for k in range(len(prompts)) for c in range(len(CATEGORIES))]
    args = [(out, split, prompts[k], first_fma + k, c, float(v), pool, simulator) for (k, c), v in zip(todo, vmrs)]
    with ProcessPoolExecutor(jobs) as pool_exec:
        futures = [pool_exec.submit(make_signal, *a) for a in args]
        return [f.result() for f in tqdm(futures, desc=split)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--simulator", choices=SIMULATORS, default="reference",
                        help="MSBG implementation; both give the same stored 16-bit files")
    parser.add_argument("--prompts", type=int, default=None,
                        help="only the first N prompts of each split (default: all; the tests' smallest size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed to regenerate the demo data: apt-get install espeak-ng")
    pool = [speak(line, voice, pitch=50, speed=165) for line, voice in zip(BABBLE_LINES, BABBLE_VOICES)]
    # Built in a new folder, swapped in only when complete: an interruption leaves the old demo
    # (and its shipped Stage-2 store; a completed rebuild has none: run scripts/make_demo_store.py).
    target = args.out / "cadenza_data"
    with replaced_folder(target) as base:
        for split, prompts, first_fma in (("train", TRAIN_PROMPTS, 0),
                                          ("valid", VALID_PROMPTS, len(TRAIN_PROMPTS))):
            records = build_split(base, split, prompts[:args.prompts], first_fma, pool, jobs=args.jobs,
                                  simulator=args.simulator)
            meta = base / "metadata" / f"{split}_metadata.json"
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
            logger.info("%s: %d signals -> %s", split, len(records), target / "metadata" / meta.name)
        write_marker(base / "metadata")  # the labels are made up: every tool that prints figures says so


if __name__ == "__main__":
    main()

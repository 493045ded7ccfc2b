"""The prepared GPU check of Stage 2 and training: offline, in a few minutes, one results file.

    python benchmarks/gpu_check.py [--device cuda] [--out results/gpu_check.json] [--smoke]

Parts, in turn (each one's result, time and any error go to ``--out``, JSON; a part that
fails is recorded and the others still run; the exit status is 1 when any failed):

1. ``cuda_tests``: the tests marked ``gpu`` (``python -m pytest -m gpu`` on the test modules
   that mark some); on a CPU they are only collected.
2. ``asr``: Whisper's Stage-2 cost in ears per second at batch sizes 1 to 32, for
   ``tiny.en`` (the checkpoint ``$CLIP_OPENAI_CHECKPOINT`` points at, else random weights)
   and for openai-whisper models of the ``small``, ``medium`` and ``large-v3`` shapes with
   random weights (no download: the encoder's cost does not depend on the weights). Each
   batch is the demo's ears (16 kHz, padded to Whisper's 30 s as Stage 2 does), through
   the log-mel features, the encoder and a greedy decoder that always decodes
   ``--tokens`` tokens (default 32, about a lyric line; random weights never stop at
   end-of-text, so the count is fixed for all). float16 on CUDA (openai-whisper's
   default there), float32 on the CPU. Each figure is the faster of two timed rounds
   after one untimed (warm-up) batch.
3. ``simulator``: the torch hearing-loss simulator (``code.hearing_loss.torch_ear``) on the
   device against the fast one (numba, CPU) on demo audio: time of each and the largest
   difference.
4. ``training``: one LyricAid training step (the model, the listener's torch MSBG, the
   Whisper objective of tiny.en, backward, Adam), as ``--train`` takes it, on demo items:
   its time and the objective.

``--smoke`` runs every part at its smallest (tiny shape only, batch sizes 1 and 2, 4
tokens, half a second of audio): the test suite runs it with ``--device cpu`` so that
the check cannot rot. Its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.gpu_check", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import torch

from code.data.audio import read_audio
from code.evaluation.asr.engines import split_ears
from code.io_utils import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "cadenza_data"
RATE = 44100
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
# openai-whisper's ModelDimensions of each shape (whisper/__init__.py's checkpoints)
SHAPES = {
    "tiny.en": dict(n_mels=80, n_vocab=51864, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                    n_text_state=384, n_text_head=6, n_text_layer=4),
    "small": dict(n_mels=80, n_vocab=51865, n_audio_state=768, n_audio_head=12, n_audio_layer=12,
                  n_text_state=768, n_text_head=12, n_text_layer=12),
    "medium": dict(n_mels=80, n_vocab=51865, n_audio_state=1024, n_audio_head=16, n_audio_layer=24,
                   n_text_state=1024, n_text_head=16, n_text_layer=24),
    "large-v3": dict(n_mels=128, n_vocab=51866, n_audio_state=1280, n_audio_head=20, n_audio_layer=32,
                     n_text_state=1280, n_text_head=20, n_text_layer=32),
}


def demo_ears(n: int, seconds: float | None = None) -> list[np.ndarray]:
    """``n`` ears (16 kHz) of the demo's valid signals, repeated when there are fewer."""
    ears = []
    for path in sorted((DEMO / "valid" / "signals").glob("*.flac")):
        audio = read_audio(path, RATE)
        if seconds is not None:
            audio = audio[:, : int(seconds * RATE)]
        ears += split_ears(audio, RATE)
        if len(ears) >= n:
            break
    return [ears[i % len(ears)] for i in range(n)]


def whisper_model(shape: str, device: str, checkpoint: str = ""):
    """An openai-whisper model of ``shape``: loaded from ``checkpoint`` when given, else random
    weights (seeded); float16 on CUDA, float32 on the CPU; in eval mode."""
    import whisper
    from whisper.model import ModelDimensions, Whisper

    if checkpoint:
        model = whisper.load_model(checkpoint, device=device)
    else:
        torch.manual_seed(0)
        model = Whisper(ModelDimensions(n_audio_ctx=1500, n_text_ctx=448, **SHAPES[shape])).to(device)
    return model.half().eval() if device.startswith("cuda") else model.float().eval()


def decode_batch(model, ears: list[np.ndarray], tokens: int) -> None:
    """Stage 2's Whisper work on a batch of ears: log-mel (30 s), encoder, then ``tokens`` greedy
    decoding steps with the key/value cache (never stopping early)."""
    import whisper

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    with torch.no_grad():  # not inference_mode: whisper caches tensors (mel filters) the training step reuses
        mel = torch.stack([whisper.log_mel_spectrogram(torch.from_numpy(e.astype(np.float32)).to(device),
                                                       n_mels=model.dims.n_mels, padding=whisper.audio.N_SAMPLES)
                           [:, : whisper.audio.N_FRAMES] for e in ears]).to(dtype)
        features = model.encoder(mel)
        sot = [50257, 50362] if model.dims.n_vocab == 51864 else [50258, 50259, 50359, 50363]
        text = torch.tensor([sot] * len(ears), device=device)
        cache, hooks = model.install_kv_cache_hooks()
        try:
            step = text
            for _ in range(tokens):
                logits = model.decoder(step, features, kv_cache=cache)
                step = logits[:, -1].argmax(dim=-1, keepdim=True)
                text = torch.cat([text, step], dim=1)
        finally:
            for hook in hooks:
                hook.remove()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def part_asr(args) -> dict:
    checkpoint = os.environ.get("CLIP_OPENAI_CHECKPOINT", "")
    shapes = ["tiny.en"] if args.smoke else list(SHAPES)
    sizes = (1, 2) if args.smoke else BATCH_SIZES
    ears = demo_ears(max(sizes), 0.5 if args.smoke else None)
    out = {"tokens": args.tokens, "dtype": "float16" if args.device.startswith("cuda") else "float32", "models": {}}
    for shape in shapes:
        weights = checkpoint if shape == "tiny.en" and Path(checkpoint).is_file() else ""
        model = whisper_model(shape, args.device, weights)
        decode_batch(model, ears[:1], args.tokens)  # warm-up
        rates = {}
        for size in sizes:
            best = min(_seconds(lambda: decode_batch(model, ears[:size], args.tokens)) for _ in range(2))
            rates[str(size)] = round(size / best, 3)
            print(f"asr {shape} batch {size}: {size / best:.2f} ears/s", flush=True)
        out["models"][shape] = {"weights": weights or "random", "ears_per_s": rates}
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return out


def part_simulator(args) -> dict:
    from code.hearing_loss.design import ear_design
    from code.hearing_loss.fast import simulate_ear
    from code.hearing_loss.torch_ear import simulate_torch
    from code.models.audiograms import DEFAULT_AUDIOGRAMS

    design = ear_design(DEFAULT_AUDIOGRAMS["Moderate"])
    path = sorted((DEMO / "valid" / "unprocessed").glob("*.flac"))[0]
    audio = read_audio(path, RATE)[:, : int((0.5 if args.smoke else 30.0) * RATE)]
    audio = np.tile(audio, (1, 1 if args.smoke else 10))  # not smoke: tens of seconds
    audio = (audio * (0.9 / np.max(np.abs(audio)))).astype(np.float32)
    simulate_ear(audio[0, :4410].astype(np.float64), design)  # warm-up (compiled kernels)
    with torch.no_grad():
        simulate_torch(torch.from_numpy(audio[:, :4410])[None].to(args.device), [design])
    start = time.perf_counter()
    fast = np.stack([simulate_ear(ch.astype(np.float64), design) for ch in audio])
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        mine = simulate_torch(torch.from_numpy(audio)[None].to(args.device), [design],
                              cochlea_dtype=torch.float64)[0].cpu().numpy()
    t_torch = time.perf_counter() - start
    seconds = audio.shape[1] / RATE
    print(f"simulator: {seconds:.1f} s of stereo: fast {t_fast:.2f} s, torch on {args.device} {t_torch:.2f} s",
          flush=True)
    return {"audio_s": round(seconds, 2), "fast_s": round(t_fast, 3), "torch_s": round(t_torch, 3),
            "torch_speed_vs_fast": round(t_fast / t_torch, 3),
            "max_abs_diff": float(np.max(np.abs(mine.astype(np.float64) - fast)))}


def part_training(args) -> dict:
    from code.hearing_loss.design import ear_design
    from code.models.audiograms import DEFAULT_AUDIOGRAMS
    from code.models.hearing_aid_models import make_model
    from code.training.objective import WhisperObjective
    from code.training.train import TRAIN_CATEGORIES, TRAIN_WINDOW_S, TrainItem, step_values

    checkpoint = os.environ.get("CLIP_OPENAI_CHECKPOINT", "")
    with tempfile.TemporaryDirectory() as folder:
        if not Path(checkpoint).is_file():  # random tiny.en weights, saved as a checkpoint
            model = whisper_model("tiny.en", "cpu")
            checkpoint = str(Path(folder) / "tiny-random.pt")
            torch.save({"dims": model.dims.__dict__, "model_state_dict": model.state_dict()}, checkpoint)
        device = torch.device(args.device)
        objective = WhisperObjective(checkpoint, device=device, window_s=TRAIN_WINDOW_S)
    records = json.loads((DEMO / "metadata" / "valid_metadata.json").read_text())
    records = [r for r in records if r["hearing_loss"] in TRAIN_CATEGORIES][: 2 if args.smoke else 8]
    items = [TrainItem(r["signal"], r["prompt"], r["hearing_loss"], r["prompt"],
                       read_audio(DEMO / "valid" / "unprocessed" / f"{r['signal']}_unproc.flac", RATE)
                       [:, : int((0.5 if args.smoke else 10.0) * RATE)]) for r in records]
    model = make_model("LyricAid", sample_rate=RATE).to(device)
    designs = {c: ear_design(DEFAULT_AUDIOGRAMS[c]) for c in TRAIN_CATEGORIES}
    levels = {c: torch.tensor(np.asarray(DEFAULT_AUDIOGRAMS[c].levels, dtype=np.float32)) for c in TRAIN_CATEGORIES}
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    start = time.perf_counter()
    score, _ = step_values(model, objective, items, [k % 2 for k in range(len(items))], levels, designs, device)
    loss = -score.mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    print(f"training: one LyricAid step on {len(items)} items: {seconds:.2f} s", flush=True)
    return {"items": len(items), "step_s": round(seconds, 3), "objective": float(score.detach().mean()),
            "whisper": Path(checkpoint).name if "tiny-random" not in checkpoint else "random tiny.en"}


def part_cuda_tests(args) -> dict:
    files = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_*.py"))
             if "mark.gpu" in p.read_text(encoding="utf-8")]  # the modules holding them: faster to collect
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    if not args.device.startswith("cuda"):
        command.append("--collect-only")  # no GPU: only check that they are found
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.test_timeout)
    tail = done.stdout.strip().splitlines()[-1:] or [""]
    print(f"cuda tests ({'collected' if '--collect-only' in command else 'run'}): {tail[0]}", flush=True)
    if done.returncode not in (0, 5):  # 5: no tests collected
        raise RuntimeError(f"pytest -m gpu exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return {"command": " ".join(command[1:]), "summary": tail[0], "returncode": done.returncode}


PARTS = {"cuda_tests": part_cuda_tests, "asr": part_asr, "simulator": part_simulator,
         "training": part_training}


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cuda, cuda:N or cpu")
    parser.add_argument("--out", default=str(ROOT / "results" / "gpu_check.json"), help="the results file (JSON)")
    parser.add_argument("--smoke", action="store_true", help="every part at its smallest (for the tests)")
    parser.add_argument("--tokens", type=int, default=0, help="tokens decoded per ear (default 32; smoke 4)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--test-timeout", type=int, default=300, help="seconds for the gpu tests")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    if any(p not in PARTS for p in parts):
        parser.error(f"--parts: expected some of {', '.join(PARTS)}, got {args.parts!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch sees no CUDA device here (use --device cpu)")
    args.tokens = args.tokens or (4 if args.smoke else 32)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    results = {"device": args.device, "device_name": torch.cuda.get_device_name(args.device)
               if args.device.startswith("cuda") else platform.processor() or platform.machine(),
               "smoke": args.smoke, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "torch": torch.__version__, "cpu_threads": torch.get_num_threads(), "parts": {}}
    failed = []
    for name in parts:
        start = time.perf_counter()
        try:
            result = {"ok": True, **PARTS[name](args)}
        except Exception as e:  # recorded, so that the other parts still run and report
            failed.append(name)
            result = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
        result["seconds"] = round(time.perf_counter() - start, 2)
        results["parts"][name] = result
        write_json_atomic(Path(args.out), results)  # after each part: a stopped check keeps what it did
    print(f"gpu_check: {len(parts) - len(failed)} of {len(parts)} parts ok; results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

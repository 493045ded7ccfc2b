"""A differentiable intelligibility objective: how likely Whisper finds the lyric line in
what each ear heard.

``WhisperObjective`` resamples each simulated ear from 44.1 kHz to Whisper's 16 kHz in
torch (``resample_to_16k``), takes Whisper's log-mel spectrogram and encoder, and
teacher-forces the lyric line through the decoder: the objective of an ear is the mean
log-probability of the line's events: that Whisper hears speech at all (not its
``<|nospeech|>`` token at the start-of-transcript position, the probability faster-whisper
and openai-whisper use to drop a segment as silence), then each token of the line (its
words, then end-of-text). The better ear's value
is the signal's, as the better-ear words-correct score is the challenge baseline's feature.
Every step is torch, so gradients reach the audio; Whisper's own weights are frozen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from code.config import WHISPER_SAMPLE_RATE

N_SAMPLES_30S = 30 * WHISPER_SAMPLE_RATE  # Whisper's encoder always reads a 30 s window
EDGE_PAD_S = 0.05  # s of zeros around an ear before the FFT resampling (no wrap-around)


def resample_to_16k(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Band-limited resampling of ``x`` ``[..., T]`` to 16 kHz by FFT (differentiable).

    The ear is padded with ``EDGE_PAD_S`` of zeros at both ends, its spectrum cut at 8 kHz
    (an ideal low-pass) and inverted at the new length; the padding is then removed.
    Returns ``[..., round(T * 16000 / sample_rate)]`` in ``x``'s dtype.
    """
    if sample_rate == WHISPER_SAMPLE_RATE:
        return x
    pad = int(EDGE_PAD_S * sample_rate)
    n_in = x.shape[-1] + 2 * pad
    n_out = round(n_in * WHISPER_SAMPLE_RATE / sample_rate)
    spectrum = torch.fft.rfft(F.pad(x, (pad, pad)), n=n_in)
    bins = n_out // 2 + 1
    spectrum = spectrum[..., :bins] if spectrum.shape[-1] >= bins else F.pad(spectrum, (0, bins - spectrum.shape[-1]))
    y = torch.fft.irfft(spectrum, n=n_out) * (n_out / n_in)
    out_pad = round(pad * WHISPER_SAMPLE_RATE / sample_rate)
    return y[..., out_pad: out_pad + round(x.shape[-1] * WHISPER_SAMPLE_RATE / sample_rate)]


def load_whisper(model: str, device: str | torch.device = "cpu"):
    """An openai-whisper model by name (downloaded by whisper on first use) or ``.pt`` path,
    in eval mode with its weights frozen (float32)."""
    import whisper

    loaded = whisper.load_model(model, device=device)
    loaded.eval()
    for p in loaded.parameters():
        p.requires_grad_(False)
    return loaded.float()


class WhisperObjective(torch.nn.Module):
    """Teacher-forced Whisper log-likelihood of a lyric line per ear (higher: more intelligible).

    Parameters:
        model: an openai-whisper model name (e.g. ``tiny.en``) or checkpoint path.
        device: where Whisper runs.
        window_s: None: Whisper's 30 s window (the ear zero-padded, as Whisper hears it);
            a number: a shorter window, the ear plus this many seconds of padding (far
            cheaper; an approximation Whisper was not trained on, measured in the README).
        speech_event: count "speech is heard" (one minus the no-speech probability) as one
            more event in the mean (False: the line's tokens only).
    """

    def __init__(self, model: str, *, device: str | torch.device = "cpu",
                 window_s: float | None = None, speech_event: bool = True) -> None:
        super().__init__()
        self.window_s = window_s
        self.speech_event = speech_event
        import whisper.tokenizer

        self.whisper = load_whisper(model, device)
        self.tokenizer = whisper.tokenizer.get_tokenizer(
            self.whisper.is_multilingual, num_languages=self.whisper.num_languages,
            language="en", task="transcribe")
        self.prefix = list(self.tokenizer.sot_sequence_including_notimestamps)

    def tokens(self, line: str) -> list[int]:
        """The line's text tokens followed by end-of-text."""
        return self.tokenizer.encode(" " + line.strip()) + [self.tokenizer.eot]

    def log_mel(self, audio_16k: torch.Tensor, frames: int = 3000) -> torch.Tensor:
        """``[N, T16]`` -> ``[N, n_mels, frames]``: Whisper's features of each ear alone
        (whisper's function normalises by the loudest bin of its whole input, so each ear
        is computed by itself), zero-padded to 30 s as Whisper does, then cut to ``frames``."""
        import whisper

        n_mels = self.whisper.dims.n_mels
        mels = [whisper.log_mel_spectrogram(a.float()[:N_SAMPLES_30S], n_mels=n_mels,
                                            padding=N_SAMPLES_30S)[:, :frames] for a in audio_16k]
        return torch.stack(mels)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Whisper's encoder on ``[N, n_mels, frames]``; a window shorter than 30 s uses
        the first positional embeddings (as whisper.cpp's ``audio_ctx`` does)."""
        enc = self.whisper.encoder
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).permute(0, 2, 1)
        x = x + enc.positional_embedding[: x.shape[1]].to(x.dtype)
        for block in enc.blocks:
            x = block(x)
        return enc.ln_post(x)

    def ear_scores(self, audio_16k: torch.Tensor, lines: Sequence[str]) -> torch.Tensor:
        """Mean log-probability per event of ``lines[i]`` given ear ``audio_16k[i]`` ``[N, T16]`` -> ``[N]``
        (the events: speech heard, when ``speech_event``, then the line's tokens)."""
        if len(lines) != audio_16k.shape[0]:
            raise ValueError(f"{audio_16k.shape[0]} ears but {len(lines)} lines")
        device = next(self.whisper.parameters()).device
        frames = 3000 if self.window_s is None else min(3000, 2 * math.ceil(
            (audio_16k.shape[-1] / WHISPER_SAMPLE_RATE + self.window_s) * 50))
        features = self.encode(self.log_mel(audio_16k.to(device), frames))
        targets = [self.tokens(line) for line in lines]
        width = len(self.prefix) + max(len(t) for t in targets) - 1
        inputs = torch.full((len(lines), width), self.tokenizer.eot, dtype=torch.long, device=device)
        mask = torch.zeros(len(lines), width, dtype=torch.bool, device=device)
        wanted = torch.zeros(len(lines), width, dtype=torch.long, device=device)
        start = len(self.prefix) - 1  # the position whose output predicts the first text token
        for i, t in enumerate(targets):
            row = self.prefix + t[:-1]
            inputs[i, :len(row)] = torch.tensor(row, device=device)
            wanted[i, start:start + len(t)] = torch.tensor(t, device=device)
            mask[i, start:start + len(t)] = True
        logits = self.whisper.decoder(inputs, features)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        logp = log_probs.gather(-1, wanted[..., None])[..., 0]
        total, count = (logp * mask).sum(dim=-1), mask.sum(dim=-1)
        if self.speech_event:
            total = total + self.speech_log_prob(log_probs[:, self.prefix.index(self.tokenizer.sot)])
            count = count + 1
        return total / count

    def speech_log_prob(self, log_probs: torch.Tensor) -> torch.Tensor:
        """log(1 - P(<|nospeech|>)) from the start-of-transcript position's ``[N, vocab]`` log-probabilities."""
        no_speech = self.tokenizer.no_speech
        others = torch.cat([log_probs[:, :no_speech], log_probs[:, no_speech + 1:]], dim=-1)
        return torch.logsumexp(others, dim=-1)

    def forward(self, heard: torch.Tensor, lines: Sequence[str], *, sample_rate: int,
                ears: str = "better") -> torch.Tensor:
        """The objective of each signal ``heard`` ``[B, 2, T]`` (what the listener's ears heard,
        at ``sample_rate``) for its lyric line: ``[B]``, the better ear's (``ears="better"``)
        or the two ears' mean (``"mean"``) of ``ear_scores`` (mean log-probability per event)."""
        batch = heard.shape[0]
        audio = resample_to_16k(heard.reshape(batch * 2, -1), sample_rate)
        per_ear = self.ear_scores(audio, [line for line in lines for _ in (0, 1)]).reshape(batch, 2)
        if ears == "better":
            return per_ear.max(dim=1).values
        if ears == "mean":
            return per_ear.mean(dim=1)
        raise ValueError(f"ears must be 'better' or 'mean', got {ears!r}")

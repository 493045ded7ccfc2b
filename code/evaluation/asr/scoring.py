"""Words-correct scoring of a transcript against the lyric line.

Uses the official CLIP1 ``SentenceScorer`` from pyclarity's recipe (its text
normalisation: punctuation, contractions from ``contractions.csv``, numbers
to words, upper case), applied identically to reference and hypothesis.
A quirk of that scorer is kept on purpose: its tokeniser drops digit tokens
from the text before numbers are spelled out, so "2" in a prompt is ignored.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# pyclarity's CLIP1 baseline recipe folder, found without importing the scorer (it imports
# inflect, whose type-checking instrumentation costs seconds: only a run that scores pays it).
RECIPE_DIR = Path(importlib.util.find_spec("recipes.cad_icassp_2026.baseline").submodule_search_locations[0])
CONTRACTIONS_FILE = RECIPE_DIR / "contractions.csv"
# The recipe's precomputed training scores (openai-whisper base.en, the official audio route).
PRECOMPUTED_DIR = RECIPE_DIR / "precomputed"
OFFICIAL_TRAIN_SCORES = {
    "whisper.mixture": PRECOMPUTED_DIR / "cadenza_data.train.whisper.jsonl",
    "stoi": PRECOMPUTED_DIR / "cadenza_data.train.stoi.jsonl",
}


@dataclass(frozen=True)
class WordScore:
    """Alignment counts of a hypothesis against a reference."""

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def correctness(self) -> float:
        """Share of reference words recognised, hits / (hits + subs + dels), in 0..1."""
        return self.hits / (self.hits + self.substitutions + self.deletions)


class LyricScorer:
    """The official CLIP1 scorer, built once and reused for every call."""

    def __init__(self, contractions_file: Path = CONTRACTIONS_FILE) -> None:
        from recipes.cad_icassp_2026.baseline import transcription_scorer

        self._scorer = transcription_scorer.SentenceScorer(str(contractions_file))

    def normalise(self, text: str) -> str:
        """The normalised word sequence, as the scorer compares it."""
        return self._scorer.get_word_sequence(text)

    def score(self, reference: str, hypothesis: str) -> WordScore:
        """Score ``hypothesis`` against ``reference``.

        Raises:
            ValueError: when the reference has no words after normalisation.
        """
        if not self.normalise(reference).strip():
            raise ValueError(f"reference {reference!r} has no words to score against")
        m = self._scorer.score([reference], [hypothesis])
        return WordScore(m.hits, m.substitutions, m.deletions, m.insertions)

"""Which words of a lyric line the official CLIP1 scorer counted heard.

``LyricScorer.score`` returns counts only; the same scorer (pyclarity's CLIP1
``SentenceScorer``, same normalisation, same contractions file) aligns the words with
jiwer, and the reference words in that alignment's ``equal`` chunks are its hits. So the
marks here number exactly the hits ``LyricScorer.score`` reports for the same texts.
"""

from __future__ import annotations

from pathlib import Path

from code.evaluation.asr.scoring import CONTRACTIONS_FILE


class WordMarker:
    """The official scorer, built once, giving each prompt word heard or missed."""

    def __init__(self, contractions_file: Path = CONTRACTIONS_FILE) -> None:
        from recipes.cad_icassp_2026.baseline import transcription_scorer

        self._scorer = transcription_scorer.SentenceScorer(str(contractions_file))

    def marks(self, reference: str, hypothesis: str) -> list[tuple[str, bool]]:
        """Each normalised reference word (upper case, as the scorer compares it) with
        whether the scorer counted it heard.

        Raises:
            ValueError: when the reference has no words after normalisation.
        """
        if not self._scorer.get_word_sequence(reference).strip():
            raise ValueError(f"reference {reference!r} has no words to score against")
        m = self._scorer.score([reference], [hypothesis])
        words = m.references[0]
        heard = [False] * len(words)
        for chunk in m.alignments[0]:
            if chunk.type == "equal":
                heard[chunk.ref_start_idx:chunk.ref_end_idx] = [True] * (chunk.ref_end_idx - chunk.ref_start_idx)
        return list(zip(words, heard))

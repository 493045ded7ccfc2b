"""Words-correct scoring with the official CLIP1 scorer, on hand-worked pairs."""

from __future__ import annotations

import pytest

from code.evaluation.asr.scoring import LyricScorer

# (reference prompt, transcript, hits, substitutions, deletions, correctness 0..1)
CASES = [
    ("and then lower it down again", "And then lower it down again.", 6, 0, 0, 1.0),
    ("do not ask me that we are partners", "Don't ask me, that we're partners!", 8, 0, 0, 1.0),
    ("i will wait for you", "I'll wait for you", 5, 0, 0, 1.0),
    ("cos you better hold on", "cause you better hold on", 4, 1, 0, 0.8),
    ("the river runs forever to the sea", "The river runs for ramparts at the sea.", 5, 2, 0, 5 / 7),
    ("hello world", "", 0, 0, 2, 0.0),
    ("hello world", "   ", 0, 0, 2, 0.0),
    ("one more time", "1 more time", 2, 0, 1, 2 / 3),  # the scorer's tokeniser drops digits
    ("hold my hand", "hold, my (hand)", 3, 0, 0, 1.0),
    ("sing it loud", "sing it loud sing it loud", 3, 0, 0, 1.0),  # insertions do not count
]


@pytest.fixture(scope="module")
def scorer():
    return LyricScorer()


@pytest.mark.parametrize("ref,hyp,hits,subs,dels,correct", CASES)
def test_hand_worked_pairs(scorer, ref, hyp, hits, subs, dels, correct):
    score = scorer.score(ref, hyp)
    assert (score.hits, score.substitutions, score.deletions) == (hits, subs, dels)
    assert score.correctness == pytest.approx(correct)


def test_normalisation_is_shared(scorer):
    assert scorer.normalise("Don't STOP, it's over!") == "DO NOT STOP IT IS OVER"
    assert scorer.normalise("We're here.") == "WE ARE HERE"


def test_empty_reference_is_an_error(scorer):
    with pytest.raises(ValueError, match="no words"):
        scorer.score("...", "anything")

"""What a predictor takes, declared on its class (as scikit-learn's estimator tags are), so
that no code outside a predictor and the registry needs to know it by name.

Each predictor class sets:

- ``takes``: ``ONE_COLUMN`` (one feature column: ``--feature``, else the better-ear ASR
  score), ``ALL_FEATURES`` (every feature column) or ``EMBEDDINGS`` (Whisper encoder
  embeddings in place of features: Stage 2 computes those for it);
- ``handles_missing``: True when NaN features are fitted and predicted as such (else a
  record missing a used column is refused, named, or left out with ``--skip-invalid``);
- ``uses_feature``: True when ``--feature`` reaches it (its own column, or its one-column
  members'); else the log says the option is ignored;
- ``fits_precomputed``: True when it can be fitted on the official precomputed score files
  (one column, named otherwise there: ``whisper.mixture``);
- ``trains_on_device``: True when it takes ``device`` (``--asr-device``) to train on.
"""

from __future__ import annotations

from code.errors import DataError

ONE_COLUMN = "one column"
ALL_FEATURES = "all features"
EMBEDDINGS = "embeddings"
TAKES = (ONE_COLUMN, ALL_FEATURES, EMBEDDINGS)
TAGS = ("takes", "handles_missing", "uses_feature", "fits_precomputed", "trains_on_device")

DEFAULT_FEATURE_SUFFIX = ".better_ear"  # with several columns and none named: the first better-ear ASR score
OFFICIAL_ASR_COLUMN = "whisper.mixture"  # the ASR score of pyclarity's precomputed files (the official calibration's)


def tags_of(cls: type) -> dict:
    """A predictor class's tags, ``{tag: value}``.

    Raises:
        TypeError: naming the class and the tag, for one it does not declare.
    """
    missing = [tag for tag in TAGS if not hasattr(cls, tag)]
    if missing or cls.takes not in TAKES:
        raise TypeError(f"predictor {cls.__name__} must declare {missing or 'takes'} "
                        f"(code/evaluation/prediction/capabilities.py; takes is one of {TAKES})")
    return {tag: getattr(cls, tag) for tag in TAGS}


def describe(cls: type, used: list[str]) -> str:
    """What a predictor used, for the log: ``takes one column (asr.tiny.en.better_ear);
    missing values refused``."""
    shown = ", ".join(used[:4]) + (f" and {len(used) - 4} more" if len(used) > 4 else "")
    return (f"takes {cls.takes}" + (f" ({shown})" if shown else "")
            + f"; missing values {'used' if cls.handles_missing else 'refused'}")


def pick_feature(names: list[str], feature: str | None) -> str:
    """The one column a single-feature predictor uses: ``feature``; else the only
    column; else the first better-ear ASR score (``asr.<model>.better_ear``); else
    the official score files' ASR column (``whisper.mixture``), as the official
    baseline calibrates.

    Raises:
        DataError: listing the columns, when ``feature`` is not among them, or is
            None while there are several and none is a better-ear score.
    """
    if feature is not None:
        if feature not in names:
            raise DataError(f"feature {feature!r} is not a feature column; columns are {names}")
        return feature
    if len(names) == 1:
        return names[0]
    better = [n for n in names if n.startswith("asr.") and n.endswith(DEFAULT_FEATURE_SUFFIX)]
    if not better and OFFICIAL_ASR_COLUMN in names:
        return OFFICIAL_ASR_COLUMN
    if not better:
        raise DataError(f"{len(names)} feature columns {names}: name the one to calibrate "
                        f"with --feature NAME (e.g. --feature {names[0]})")
    return better[0]
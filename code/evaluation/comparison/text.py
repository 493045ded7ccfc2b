"""The comparison as text: one row per run and split, and the paired differences."""

from __future__ import annotations

import json
import math
from pathlib import Path

from code.data.synthetic import SYNTHETIC_MARKER, SYNTHETIC_NOTE


def _fmt(x: float, width: int = 6, digits: int = 3) -> str:
    return f"{'nan':>{width}}" if math.isnan(x) else f"{x:{width}.{digits}f}"


VALUE_WIDTH = 80  # characters of one setting's value in the table; longer ones are cut with "…"


def _value(value: object) -> str:
    """A setting's value as the table shows it: file paths by their names (a comma list of
    them joined with '+'), objects as compact JSON, cut to ``VALUE_WIDTH``."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        text = "+".join(Path(part.strip()).name for part in value.split(",") if part.strip())
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 1] + "…"


def distinguishing(rows: list[dict]) -> tuple[list[str], list[str]]:
    """What sets each row apart: for every setting whose value differs among the rows (beyond
    the table's own columns), ``name=value`` on each row (``-`` for a row without such a
    setting); and the ``name=value`` shared by every row that differs from the defaults."""
    names = list(dict.fromkeys(k for r in rows for k in r.get("settings", {})))
    with_config = [r for r in rows if "config" in r]

    def value(r: dict, name: str) -> str:
        if name in r.get("settings", {}):
            return _value(r["settings"][name])
        return _value(r["config"].get(name, "")) or "-" if "config" in r else "?"

    varying = [n for n in names if len({value(r, n) for r in with_config}) > 1]
    common = [f"{n.replace('_', '-')}={value(with_config[0], n)}" for n in names
              if n not in varying and with_config]
    labels = [",".join(f"{n.replace('_', '-')}={value(r, n)}" for n in varying) if "config" in r
              else ",".join(r.get("other", [])) for r in rows]
    return [label or "-" for label in labels], common


def format_table(rows: list[dict]) -> str:
    """The table: a header, one line per row (sorted by data set, split, RMSE; every column
    as wide as its content), then notes (what Std is, what every row shares, synthetic labels)."""
    rows = sorted(rows, key=lambda r: (r["data_set"], r["split"], r["RMSE"]))
    labels, common = distinguishing(rows)
    cells = [[r["model"], r["data_set"], r["split"], r["input"], r["predictor"], r["fit"], label,
              str(r["n"]), str(r["truth_not_predicted"]), f"{r['RMSE']:.2f}", f"{r['Std']:.2f}",
              _fmt(r["NCC"], 0), _fmt(r["KT"], 0),
              ", ".join(f"{k} {v['RMSE']:.2f}" for k, v in r["per_hearing_loss"].items())]
             for r, label in zip(rows, labels)]
    header = ["model", "data", "split", "input", "predictor", "fit", "differs by", "n", "lacks", "RMSE",
              "Std", "NCC", "KT", "RMSE by hearing loss"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    right = {7, 8, 9, 10, 11, 12}  # numbers, right-aligned

    def line(row: list[str]) -> str:
        return " ".join(f"{c:>{w}}" if i in right else f"{c:<{w}}"
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines = [line(header), *(line(c) for c in cells)]
    lines.append("(RMSE, Std: points of 0..100; Std = the standard error of the mean error, "
                 "std(predicted - true) / sqrt(n); lacks: labelled signals the CSV does not predict)")
    if common:
        lines.append(f"(every run here also has {', '.join(common)})")
    for r in rows:
        if math.isnan(r["NCC"]):
            why = ("it covers one signal: correlations need two or more" if r["n"] < 2
                   else "its predictions or the labels are all equal: correlations are undefined")
            lines.append(f"(NCC and KT of {r['model']} on {r['split']} are nan: {why})")
    if any(r["data_set"] == "?" for r in rows):
        lines.append("(data '?': a CSV without the .run.json main.py writes beside it, matched by "
                     "its signal IDs with the labels of --data-root)")
    synthetic = sorted({r["data_set"] if r["data_set"] != "?" else "of the CSVs without provenance"
                        for r in rows if r.get("synthetic")})
    if synthetic:
        lines.append(f"{SYNTHETIC_NOTE} (the data set {', '.join(synthetic)} declares its labels made "
                     f"up: {SYNTHETIC_MARKER} in its metadata folder)")
    return "\n".join(lines)


def format_differences(diffs: list, baseline: str) -> str:
    """The paired differences; the header says what the baseline is: the ``baseline``
    model's run of the same settings, or the one CSV file ``baseline`` names."""
    what = (f"the baseline CSV {baseline} (the same file for every run)" if baseline.endswith(".csv")
            else f"the {baseline} run of the same settings")
    run_w = max([3] + [len(d.model) for d in diffs])  # columns as wide as their names
    base_w = max([8] + [len(d.baseline) for d in diffs])
    lines = [f"\npaired with {what}, on shared signals (95% bootstrap CI, prompts resampled):",
             f"{'run':<{run_w}} {'baseline':<{base_w}} {'n':>4} {'dRMSE':>7} {'95% CI':>17} {'dNCC':>7} {'95% CI':>17}"]
    for d in diffs:
        lines.append(f"{d.model:<{run_w}} {d.baseline:<{base_w}} {d.n:>4} {d.d_rmse:+7.2f} "
                     f"[{d.d_rmse_ci[0]:+6.2f}, {d.d_rmse_ci[1]:+6.2f}] {d.d_ncc:+7.3f} "
                     f"[{d.d_ncc_ci[0]:+6.3f}, {d.d_ncc_ci[1]:+6.3f}]")
    lines.append("(dRMSE < 0 and dNCC > 0: better than the baseline; an interval holding 0: "
                 "no clear difference)")
    return "\n".join(lines)

"""The comparison as text: one row per run and split, and the paired differences."""

from __future__ import annotations

import math


def _fmt(x: float, width: int = 6, digits: int = 3) -> str:
    return f"{'nan':>{width}}" if math.isnan(x) else f"{x:{width}.{digits}f}"


def _other(r: dict) -> str:
    """The settings besides data set, input, predictor and fit split that set a row apart."""
    return ",".join(r["other"]) or "-"


def format_table(rows: list[dict]) -> str:
    width = max([12] + [len(r["model"]) for r in rows])  # long model names keep the columns aligned
    other = max([14] + [len(_other(r)) for r in rows])
    lines = [f"{'model':<{width}} {'data':<12} {'split':<6} {'input':<11} {'predictor':<12} {'fit':<11} "
             f"{'other':<{other}} {'n':>4} {'lacks':>5} {'RMSE':>7} {'Std':>6} {'NCC':>6} {'KT':>6}  "
             "RMSE by hearing loss"]
    for r in sorted(rows, key=lambda r: (r["data_set"], r["split"], r["RMSE"])):
        by_loss = ", ".join(f"{k} {v['RMSE']:.2f}" for k, v in r["per_hearing_loss"].items())
        lines.append(f"{r['model']:<{width}} {r['data_set']:<12} {r['split']:<6} {r['input']:<11} "
                     f"{r['predictor']:<12} {r['fit']:<11} {_other(r):<{other}} {r['n']:>4} "
                     f"{r['truth_not_predicted']:>5} {r['RMSE']:7.2f} {r['Std']:6.2f} {_fmt(r['NCC'])} "
                     f"{_fmt(r['KT'])}  {by_loss}")
    for r in rows:
        if math.isnan(r["NCC"]):
            why = ("it covers one signal: correlations need two or more" if r["n"] < 2
                   else "its predictions or the labels are all equal: correlations are undefined")
            lines.append(f"(NCC and KT of {r['model']} on {r['split']} are nan: {why})")
    if any(r["data_set"] == "?" for r in rows):
        lines.append("(data '?': a CSV without the .run.json main.py writes beside it, matched by "
                     "its signal IDs with the labels of --data-root)")
    return "\n".join(lines)


def format_differences(diffs: list, baseline: str) -> str:
    lines = [f"\npaired with the {baseline} run of the same settings, on shared signals "
             "(95% bootstrap CI, prompts resampled):",
             f"{'run':<40} {'baseline':<28} {'n':>4} {'dRMSE':>7} {'95% CI':>17} {'dNCC':>7} {'95% CI':>17}"]
    for d in diffs:
        lines.append(f"{d.model:<40} {d.baseline:<28} {d.n:>4} {d.d_rmse:+7.2f} "
                     f"[{d.d_rmse_ci[0]:+6.2f}, {d.d_rmse_ci[1]:+6.2f}] {d.d_ncc:+7.3f} "
                     f"[{d.d_ncc_ci[0]:+6.3f}, {d.d_ncc_ci[1]:+6.3f}]")
    lines.append("(dRMSE < 0 and dNCC > 0: better than the baseline; an interval holding 0: "
                 "no clear difference)")
    return "\n".join(lines)

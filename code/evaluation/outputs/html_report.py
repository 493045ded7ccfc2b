"""One static HTML page per comparison of runs: the summary, every signal with its audio.

``write_html_report(csvs, out)`` reads the runs behind the submission CSVs (their
``.run.json``, scores files and audio: ``report_signals``) and writes ``out`` with, beside
it, ``<stem>_files/`` (small spectrograms, and links to the data set's own audio, hard
links where the file system allows, else copies), so that the page and the results
folder can be copied elsewhere together and still play. Every link is relative.

The page needs no server and fetches nothing: the signals are a JSON block drawn a
page of rows at a time by ``report_page.js`` (sort, filter, pages), styled by
``report_page.css``; both are inlined. Text from the data is escaped here (the static
part) or set as text by the script (the rows).
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from code.data.synthetic import labels_are_synthetic
from code.evaluation.outputs.page_guard import metadata_changed, notes_html, share_roots, shareable, shown_records
from code.evaluation.outputs.report_signals import (RunFiles, UnsafeProvenance, load_run, page_name, records_of,
                                                    signal_rows)
from code.errors import DataError
from code.io_utils import write_text_atomic

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent  # report_page.css and report_page.js
CHAINS = {"unprocessed": "unprocessed audio → model → hearing-loss simulation (MSBG) → Whisper",
          "signals": "the listener's signals (hearing loss already in them) → model → Whisper"}
COMPARISON_HOW = ("The comparison against the listeners' labels, one line per run (best at the top): "
                  "RMSE and NCC with their 95% intervals (bootstrap, prompts resampled) in black, "
                  "the RMSE of each hearing-loss category in colour; one pair of panels per data set "
                  "and split.")


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _num(x, digits: int = 1, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _href(target: Path, page_dir: Path) -> str:
    # absolute, not resolved: a link inside the results folder stays inside it, symlink or not
    return quote(os.path.relpath(os.path.abspath(target), os.path.abspath(page_dir)).replace(os.sep, "/"))


def group_runs(csvs: list[Path], *, baseline: str | None = None) -> dict[str, list[Path]]:
    """Submission CSVs with provenance grouped into pages: ``{page name: [csv, ...]}``,
    one page per split, input and settings (``page_name``, with ``baseline`` when given);
    CSVs without provenance are left out (logged).

    Raises:
        UnsafeProvenance: when a provenance holds a name that is no plain name part.
    """
    groups: dict[str, list[Path]] = {}
    for csv in csvs:
        try:
            run = load_run(csv)
        except UnsafeProvenance:
            raise
        except (DataError, KeyError, ValueError) as e:  # no provenance, or an unreadable CSV
            logger.info("html report: %s left out: %s", csv, e)
            continue
        name = page_name(run.provenance, baseline=baseline)
        groups.setdefault(name, [])
        if run.csv not in groups[name]:
            groups[name].append(run.csv)
    return groups


def is_synthetic(run: RunFiles) -> bool:
    """Whether the run's data set declares its labels made up (``labels_are_synthetic``)."""
    return labels_are_synthetic(run.provenance.get("data_set", {}).get("metadata_dir"))


def _local(src: Path, folder: Path) -> Path:
    """``src`` reachable inside ``folder``: a hard link, else a copy (kept while its size
    and modification time are the source's)."""
    target = folder / src.name
    if target.is_file():
        have, want = target.stat(), src.stat()
        if (have.st_size, have.st_mtime_ns) == (want.st_size, want.st_mtime_ns):
            return target
    folder.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(src, target)
    except OSError:
        shutil.copy2(src, target)
    return target


def _figures_html(figures: list[tuple[Path, str]], page_dir: Path) -> str:
    parts = []
    for path, how in figures:
        if Path(path).is_file():
            parts.append(f'<figure class="figure"><img src="{_href(path, page_dir)}" alt="{_e(Path(path).name)}">'
                         f"<figcaption>{_e(how)}</figcaption></figure>")
    return "".join(parts)


def _summary_html(runs: list[RunFiles], records: list[dict], baseline: str) -> str:
    from code.evaluation.outputs.report import report_rows

    rows = report_rows({run.name: run.predictions for run in runs}, records,
                       baseline=next((run.name for run in runs if run.model == baseline), baseline))
    body = "".join(
        f"<tr><td>{_e(r['model'])}</td><td>{_e(r['hearing_loss'])}</td><td>{r['n']}</td>"
        f"<td>{_num(r['mean_intelligibility'])} [{_num(r['ci95_low'])}, {_num(r['ci95_high'])}]</td>"
        + ("<td>(the baseline)</td></tr>" if r["model"] == r["baseline"] else
           f"<td>{_num(r['change'], sign=True)} [{_num(r['change_ci95_low'], sign=True)}, "
           f"{_num(r['change_ci95_high'], sign=True)}]</td></tr>") for r in rows)
    text = ("<p>Mean predicted intelligibility (0..100) per run and hearing-loss category, with "
            "the 95% interval of the mean, and the paired change against the baseline run on the "
            "same signals (95% bootstrap interval, prompts resampled). Read the change's interval: "
            "both runs share every signal, so it is far narrower than the means'. An interval "
            "holding 0 is no clear difference.</p>")
    return (f"<h2>Predicted intelligibility</h2>{text}<table class='summary'><thead><tr><th>run</th>"
            f"<th>hearing loss</th><th>n</th><th>mean [95% CI]</th><th>change vs {_e(baseline)} "
            f"[95% CI]</th></tr></thead><tbody>{body}</tbody></table>")


def _quality_html(report_csv: Path) -> str:
    """The music-quality table from the hearing-aid report's CSV when it has HAAQI columns
    (``--input unprocessed --models`` runs; docs/quality.md), else a sentence saying why not."""
    import csv

    try:
        with Path(report_csv).open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        rows = []
    if not rows or "mean_haaqi" not in rows[0]:
        return ("<p>No music-quality figure: HAAQI is computed for <code>--input unprocessed "
                "--models</code> runs, against the unprocessed audio (docs/quality.md).</p>")
    number = (lambda v, sign=False: _num(float(v), 3, sign) if v not in ("", None) else "–")
    body = "".join(
        f"<tr><td>{_e(r['model'])}</td><td>{_e(r['hearing_loss'])}</td><td>{_e(r['haaqi_n'])}</td>"
        f"<td>{number(r['mean_haaqi'])} [{number(r['haaqi_ci95_low'])}, {number(r['haaqi_ci95_high'])}]</td>"
        + ("<td>(the baseline)</td>" if r["model"] == r["baseline"] else
           f"<td>{number(r['haaqi_change'], True)} [{number(r['haaqi_change_ci95_low'], True)}, "
           f"{number(r['haaqi_change_ci95_high'], True)}]</td>")
        + f"<td>{number(r['combined'])}</td></tr>" for r in rows)
    alpha = rows[0].get("alpha", "")
    return ("<h2>Music quality (HAAQI)</h2><p>Mean HAAQI (0..1) of each model's output against the "
            "unprocessed audio (the listener's NAL-R added by HAAQI), with the 95% interval of the "
            "mean, its paired change against the baseline (95% bootstrap interval, prompts "
            f"resampled), and the combined score alpha &times; intelligibility + (1 &minus; alpha) "
            f"&times; HAAQI with alpha {_e(alpha)}.</p><table class='summary quality'><thead><tr>"
            "<th>model</th><th>hearing loss</th><th>n</th><th>HAAQI [95% CI]</th><th>change "
            f"[95% CI]</th><th>combined</th></tr></thead><tbody>{body}</tbody></table>")


def _listener_rows(runs: list[RunFiles], records: list[dict]) -> list[dict]:
    """Each run's figures against its split's listeners (the rows ``plot_comparison``
    draws); empty when the split has no labels."""
    from code.evaluation.comparison.compare import Truth, metrics_by_category, overall_metrics

    target = runs[0].provenance.get("target", "correctness")
    truth = {r["signal"]: Truth(100.0 * float(r[target]), r["hearing_loss"], r["prompt"])
             for r in records if r.get(target) is not None}
    if not truth:
        return []
    return [{"name": run.name, "model": run.model, "split": run.split, "predictions": run.predictions,
             "data_set": run.provenance.get("data_set", {}).get("name", "?"), "synthetic": is_synthetic(run),
             "truth": truth, **overall_metrics(run.predictions, truth),
             "per_hearing_loss": metrics_by_category(run.predictions, truth)} for run in runs]


def _listeners_html(rows: list[dict], baseline: str) -> str:
    from code.evaluation.comparison.compare import paired_difference

    if not rows:
        return "<h2>Against the listeners</h2><p>This split has no listener labels.</p>"
    base = next((r for r in rows if r["model"] == baseline), None)
    lines = []
    for m in rows:
        by = ", ".join(f"{_e(k)} {v['RMSE']:.2f}" for k, v in m["per_hearing_loss"].items())
        d = (paired_difference(m["predictions"], base["predictions"], m["truth"])
             if base is not None and m is not base else None)
        paired = (f"{d.d_rmse:+.2f} [{d.d_rmse_ci[0]:+.2f}, {d.d_rmse_ci[1]:+.2f}]; "
                  f"{d.d_ncc:+.3f} [{d.d_ncc_ci[0]:+.3f}, {d.d_ncc_ci[1]:+.3f}]" if d else "–")
        lines.append(f"<tr><td>{_e(m['name'])}</td><td>{m['n']}</td><td>{_num(m['RMSE'], 2)}</td>"
                     f"<td>{_num(m['NCC'], 3)}</td><td>{_num(m['KT'], 3)}</td><td>{by}</td>"
                     f"<td>{paired}</td></tr>")
    return ("<h2>Against the listeners</h2><p>Each run's predictions against the listeners' "
            "labels of its split (correctness × 100): RMSE (lower is better), normalised "
            "cross-correlation NCC and Kendall's tau KT (higher is better), RMSE per hearing-loss "
            f"category, and the paired dRMSE; dNCC against {_e(baseline)} (95% bootstrap "
            "interval, prompts resampled; dRMSE &lt; 0 and dNCC &gt; 0: better).</p>"
            "<table class='summary'><thead><tr><th>run</th><th>n</th><th>RMSE</th><th>NCC</th>"
            "<th>KT</th><th>RMSE by hearing loss</th><th>dRMSE; dNCC vs baseline</th></tr></thead>"
            f"<tbody>{''.join(lines)}</tbody></table>")


def _provenance_html(runs: list[RunFiles]) -> str:
    items = []
    for run in runs:
        p = run.provenance
        data, code = p.get("data_set", {}), p.get("code_version", {})
        items.append(
            f"<li><b>{_e(run.name)}</b> ({_e(run.csv.name)}): data set {_e(data.get('name', '?'))} "
            f"({_e(p.get('challenge', '?'))}), metadata {_e(data.get('metadata_file', '?'))} "
            f"(digest {_e(data.get('metadata_digest', '?'))}); code: commit "
            f"{_e(code.get('git_commit') or 'none')}, sources {_e(code.get('sources_digest', '?'))}; "
            f"differs from the defaults in: {_e(json.dumps(p.get('differs_from_defaults', {})))}"
            f"<details><summary>the whole provenance (.run.json)</summary><pre>"
            f"{_e(json.dumps(p, indent=1, sort_keys=True))}</pre></details></li>")
    return f"<h2>What made it</h2><ul class='provenance'>{''.join(items)}</ul>"


def _table_data(runs: list[RunFiles], rows: list[dict], page_dir: Path, files: Path, *,
                baseline: str, spectrograms: bool, refused: list[Path]) -> dict:
    from code.evaluation.outputs.spectrogram import write_row_spectrograms

    results_dirs = {Path(os.path.abspath(run.csv.parent)) for run in runs}
    roots = share_roots(runs)
    used: set[Path] = set()
    for row in rows:
        audio = []
        for label, path in row["audio"]:
            if not shareable(path, roots):  # a link pointing elsewhere: never linked nor copied
                refused.append(Path(path))
                continue
            inside = any(d in Path(os.path.abspath(path)).parents for d in results_dirs)
            audio.append([label, path if inside else _local(Path(path), files / "audio")])
            used.add(audio[-1][1])
        specs = write_row_spectrograms([p for _, p in audio], files / "spec") if spectrograms else []
        used |= set(specs)
        row["audio"] = [{"label": label, "src": _href(path, page_dir),
                         "spec": _href(specs[i], page_dir) if specs else None}
                        for i, (label, path) in enumerate(audio)]
    for kind, pattern in (("spec", "*.png"), ("audio", "*")):
        for old in (files / kind).glob(pattern) if (files / kind).is_dir() else []:
            if old not in used:  # images and copies of files no longer shown
                old.unlink()
    return {"runs": [{"name": run.name, "model": run.model} for run in runs],
            "baseline": next((i for i, run in enumerate(runs) if run.model == baseline), None),
            "rows": rows}


def write_html_report(csvs: list[Path], out: Path, **options) -> Path:
    """``_write_page`` (its options); on any failure, the page's ``_files`` folder is removed
    when this call made it, so a refused or failed page leaves nothing behind."""
    files = Path(out).parent / f"{Path(out).stem}_files"
    linked = [p for p in (files, files / "audio", files / "spec") if p.is_symlink()]
    if linked:
        raise DataError(f"{linked[0]} is a symbolic link (to {os.readlink(linked[0])}): the page writes "
                        "its files only into a real folder beside it; remove the link and run again")
    existed = files.exists()
    try:
        return _write_page(csvs, out, **options)
    except BaseException:
        if not existed:
            shutil.rmtree(files, ignore_errors=True)
        raise


def _write_page(csvs: list[Path], out: Path, *, baseline: str = "identity",
                figures: list[tuple[Path, str]] = (), spectrograms: bool = True,
                report: Path | None = None) -> Path:
    """Write the page of the runs behind ``csvs`` (one split and input; see ``group_runs``)
    at ``out``. ``figures``: ``(png, how to read it)`` shown in the summary where the file
    exists (the hearing-aid report is added when it is there: ``report``, its files' path
    without suffix, or by default ``hearing_aid_<page name>`` beside the runs).

    Raises:
        DataError: when a run's provenance or metadata cannot be read.
    """
    out = Path(out)
    page_dir = out.parent
    page_dir.mkdir(parents=True, exist_ok=True)
    runs = sorted((load_run(csv) for csv in csvs), key=lambda run: run.model != baseline)  # baseline first
    records, left_out = shown_records(runs, records_of(runs[0]))
    if not records:
        raise DataError(f"{runs[0].csv}: no signal of its split is in every run's predictions "
                        f"({', '.join(run.name for run in runs)}): no page to write")
    name = page_name(runs[0].provenance, baseline=baseline)
    report = Path(report) if report is not None else runs[0].csv.parent / f"hearing_aid_{name}"
    figure_list = [(report.with_name(report.name + ".png"),
                    "The hearing-aid report: bars are each run's mean predicted intelligibility per "
                    "hearing-loss category with its 95% interval; the numbers over a bar are the "
                    "change against the baseline with its 95% interval; with music quality, the "
                    "right panel is HAAQI (0..1) drawn the same way."),
                   (report.with_name(report.name + "_tradeoff.png"),
                    "Words against music: each model's intelligibility change (x) against its HAAQI "
                    "change (y) versus the baseline, with 95% intervals, per hearing-loss category. "
                    "Right and down means words were bought with music quality.")] + list(figures)
    listeners = _listener_rows(runs, records)
    files = page_dir / f"{out.stem}_files"
    if listeners:
        from code.evaluation.comparison.plot import plot_comparison

        files.mkdir(parents=True, exist_ok=True)
        plot_comparison(listeners, files / "comparison.png")
        figure_list.append((files / "comparison.png", COMPARISON_HOW))
    rows = signal_rows(runs, baseline=baseline, records=records)
    disagree = [row["signal"] for row in rows if row.pop("marks_disagree")]
    refused: list[Path] = []
    data = _table_data(runs, rows, page_dir, files, baseline=baseline,
                       spectrograms=spectrograms, refused=refused)
    blob = json.dumps(data, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    split, input_kind = runs[0].split, runs[0].input
    warning = ("<p class='warning' role='alert'><b>SYNTHETIC labels.</b> This is the shipped demo: "
               "every listener label was made up from how the audio was built (README, \"The demo "
               "data\"), so the figures show the machinery working, not how real listeners hear "
               "these models.</p>" if any(is_synthetic(run) for run in runs) else "")
    page = (ASSETS / "report_page.html").read_text(encoding="utf-8").format(
        title=_e(f"{name}: {', '.join(run.name for run in runs)}"),
        heading=_e(f"{split} split, {input_kind} input: {', '.join(run.name for run in runs)}"),
        chain=_e(CHAINS.get(input_kind, input_kind)),
        warning=warning + notes_html(left_out, refused, metadata_changed(runs), disagree),
        summary=_summary_html(runs, records, baseline)
        + _quality_html(report.with_name(report.name + ".csv")), listeners=_listeners_html(listeners, baseline),
        figures=_figures_html(figure_list, page_dir), provenance=_provenance_html(runs),
        css=(ASSETS / "report_page.css").read_text(encoding="utf-8"),
        js=(ASSETS / "report_page.js").read_text(encoding="utf-8"), data=blob)
    write_text_atomic(out, page)
    logger.info("html report: %s (%d signals, %d runs): open it in a browser; to share it, copy "
                "the whole folder %s", out, len(rows), len(runs), page_dir)
    return out


def write_html_reports(csvs: list[Path], target: Path, *, baseline: str = "identity",
                       figures: list[tuple[Path, str]] = (), spectrograms: bool = True,
                       report: Path | None = None) -> list[Path]:
    """One page per group of runs (``group_runs``): ``<target>/<page name>.html`` when
    ``target`` is a folder; when it is a file name, that file for a single group, and
    ``<stem>_<page name>.html`` beside it for each of several. Returns the pages written."""
    target = Path(target)
    groups = group_runs(csvs, baseline=baseline)
    if not groups:
        logger.warning("html report: no run with its provenance among %d CSV(s); nothing written", len(csvs))
        return []
    is_file = target.suffix.lower() in (".html", ".htm")
    pages = []
    for name, members in groups.items():
        if not is_file:
            out = target / f"{name}.html"
        elif len(groups) == 1:
            out = target
        else:
            out = target.with_name(f"{target.stem}_{name}{target.suffix}")
        assert Path(out).parent == (target.parent if is_file else target), out  # plain names only
        pages.append(write_html_report(members, out, baseline=baseline, figures=figures,
                                       spectrograms=spectrograms, report=report))
    return pages

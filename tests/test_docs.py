"""The documentation stays true to the code: every option it names exists, the README stays
short, and every relative link leads somewhere.

Options are read from code only: fenced code blocks and inline code spans of README.md and
docs/**/*.md. Each option is attributed to a command:

- in a command (``python main.py --split train``, ``compute_csvs.py --plot``,
  ``python benchmarks/predictors.py --group-by track``), to that command's script;
- a bare option (``--tag``) belongs to the last project script named before it on the same
  line of the page, and to ``main.py`` when none is;
- options of other tools (``pip``, ``git``, ``pytest``, ``sbatch``, ...) and of scripts
  outside the project are ignored; so are ``# comments`` in code blocks.

``main.py`` and ``compute_csvs.py`` are asked for their ``--help`` once each (in a
subprocess; both parse their command line without importing anything heavy). The scripts in
``benchmarks/`` and ``scripts/`` import torch at the top, so their options are read from
their ``add_argument`` calls instead.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150

OPTION = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")
SCRIPT = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.py)\b")
FENCE = re.compile(r"^(\s*)(```|~~~)")
INLINE = re.compile(r"(`+)(.+?)\1")
SEPARATORS = re.compile(r"&&|\|\||;|\s\|\s|\$\(|\)")
OTHER_TOOLS = {"pip", "pip3", "git", "pytest", "sbatch", "srun", "chromium", "bash", "sh", "cat",
               "unzip", "apt-get", "apt", "ls", "rm", "cp", "mv", "ln", "export", "cd", "curl",
               "wget", "tar", "sha256sum", "ffmpeg", "conda", "uv"}
IGNORE = "ignore"


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# --- which options each script has ------------------------------------------------------

def _help_options(script: str) -> set[str]:
    """The options in ``python SCRIPT --help``; retried for a minute (the code may be
    mid-edit)."""
    deadline = time.monotonic() + 60
    while True:
        proc = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert proc.returncode == 0, f"python {script} --help failed:\n{proc.stderr[-2000:]}"
    return set(OPTION.findall(proc.stdout))


def _argparse_options(path: Path) -> set[str]:
    """The options a script's ``add_argument`` calls define (``--x`` and, for
    ``BooleanOptionalAction``, ``--no-x``), plus ``--help``."""
    found = {"--help"}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags = [a.value for a in node.args
                     if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--")]
            found.update(flags)
            if any("BooleanOptionalAction" in ast.unparse(k.value) for k in node.keywords if k.arg == "action"):
                found.update("--no-" + f[2:] for f in flags)
    return found


@functools.lru_cache(maxsize=None)
def options_of(script: str) -> frozenset[str]:
    if script in ("main.py", "compute_csvs.py"):
        return frozenset(_help_options(script))
    return frozenset(_argparse_options(ROOT / script))


def project_script(token: str) -> str | None:
    """The project script a ``*.py`` token names (``main.py``, ``path/to/main.py``,
    ``benchmarks/x.py``), or None."""
    name = Path(token).name
    if name in ("main.py", "compute_csvs.py"):
        return name
    parts = Path(token).parts
    if len(parts) >= 2 and parts[-2] in ("benchmarks", "scripts"):
        return f"{parts[-2]}/{name}"
    return None


# --- which options the docs name ---------------------------------------------------------

def _commands_in(text: str, default: str) -> list[tuple[str, str]]:
    """(script or IGNORE, option) for each option in one line of shell-like text."""
    found = []
    for segment in SEPARATORS.split(text):
        words = segment.split()
        owner = default
        if words and (words[0] in OTHER_TOOLS or (words[0] in ("python", "python3") and "-m" in words[1:2])):
            owner = IGNORE
        for match in re.finditer(r"\S+", segment):
            word = match.group()
            if word.endswith(".py") or SCRIPT.fullmatch(word.strip("[]()")):
                script = project_script(word.strip("[]()"))
                if script is not None:
                    owner = script
                elif owner != IGNORE and word.strip("[]()").endswith(".py"):
                    # python other.py: not ours. A .py name in prose leaves the owner alone.
                    if segment[:match.start()].split()[-1:] in (["python"], ["python3"]):
                        owner = IGNORE
                continue
            for option in OPTION.findall(word):
                found.append((owner, option))
    return found


def _code_block_lines(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line number, text) of the lines inside fenced code blocks, backslash continuations
    joined and comments dropped; and of the lines outside them."""
    inside, outside, in_block, pending = [], [], False, None
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_block = not in_block
            continue
        if not in_block:
            outside.append((number, line))
            continue
        line = re.sub(r"(^|\s)#.*$", "", line)
        if pending is not None:
            line = pending[1] + " " + line.strip()
            number = pending[0]
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        pending = None
        inside.append((number, line))
    return inside, outside


def named_options(page: Path) -> list[tuple[int, str, str]]:
    """(line, script or IGNORE, option) for every option named in code on ``page``."""
    found = []
    inside, outside = _code_block_lines(page.read_text(encoding="utf-8"))
    for number, line in inside:
        found += [(number, owner, option) for owner, option in _commands_in(line, "main.py")]
    for number, line in outside:
        context = "main.py"
        for match in INLINE.finditer(line):
            span = match.group(2).strip()
            # A script named in the prose before this span sets the line's context.
            for token in SCRIPT.findall(line[:match.start()]):
                if project_script(token):
                    context = project_script(token)
            for owner, option in _commands_in(span, context):
                found.append((number, owner, option))
            first = span.split()[0] if span.split() else ""
            if project_script(first) or (first in ("python", "python3") and len(span.split()) > 1
                                         and project_script(span.split()[1])):
                context = project_script(first) or project_script(span.split()[1])
    return found


def test_every_documented_option_exists():
    wrong = []
    for page in doc_pages():
        for number, owner, option in named_options(page):
            if owner == IGNORE:
                continue
            if not (ROOT / owner).is_file():
                wrong.append(f"{page.relative_to(ROOT)}:{number}: {owner} does not exist (for {option})")
            elif option not in options_of(owner):
                wrong.append(f"{page.relative_to(ROOT)}:{number}: {owner} has no option {option}")
    assert not wrong, "documented options that do not exist:\n" + "\n".join(wrong)


def test_options_in_prose_are_in_code():
    """An option written outside code (or in a code span broken over two lines) would escape
    the check above."""
    loose = []
    for page in doc_pages():
        for number, line in _code_block_lines(page.read_text(encoding="utf-8"))[1]:
            if line.count("`") % 2 or OPTION.search(INLINE.sub("", line)):
                loose.append(f"{page.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not loose, "write options in `code` on one line:\n" + "\n".join(loose)


def test_the_option_reader_attributes_options_to_their_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Run `python compute_csvs.py --plot` then `--tag x` and `pip install --no-deps y`.\n"
        "Or `benchmarks/predictors.py --group-by track` and `--skip-invalid`.\n"
        "```bash\n"
        "python main.py --split train \\\n"
        "  --models a,b   # --not-an-option\n"
        "python -m pytest -m 'not slow' --lf\n"
        "#SBATCH --array=1-10\n"
        "```\n")
    assert named_options(page) == [
        (4, "main.py", "--split"), (4, "main.py", "--models"), (6, IGNORE, "--lf"),
        (1, "compute_csvs.py", "--plot"), (1, "compute_csvs.py", "--tag"), (1, IGNORE, "--no-deps"),
        (2, "benchmarks/predictors.py", "--group-by"), (2, "benchmarks/predictors.py", "--skip-invalid"),
    ]


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; at most {README_MAX_LINES}"


LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_every_relative_link_points_to_a_file():
    broken = []
    for page in doc_pages():
        text = re.sub(r"^(```|~~~).*?^\1", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
        for target in LINK.findall(INLINE.sub("", text)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)

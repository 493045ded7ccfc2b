"""Every key and digest the project computes: of files, of settings, and of code.

A cached value is named by everything that made it and nothing else:

- ``file_digest``: a file's content (``remembered_digest`` remembers it by path, size and
  modification time, so an unchanged file is read once across runs);
- ``settings_digest`` / ``key_of``: JSON-able settings;
- ``code_digest``: the code that computed it, the way ``joblib.Memory`` keys a function by
  its own source. The digest covers each given function or class and, transitively, the
  project functions, classes and constants its source names (the functions it calls, the
  classes it builds or derives from, the module constants it reads; a private mutable
  container such as ``_CACHE = {}`` is state, not a constant), and nothing beside them. Sources are compared as syntax trees without docstrings, so comments and
  formatting never change a key. Plumbing that only writes or refuses (``NOT_VALUE_CODE``,
  exception classes) is left out. "Project" code is any code outside the standard library
  and the installed packages (this project's, a test's, a script's); installed packages
  are covered by their versions, for the packages named.

Nothing here imports numpy, torch or the project's heavier modules.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import sys
import sysconfig
import textwrap
import types
from pathlib import Path
from typing import Any, Iterable

from code.io_utils import write_text_atomic

_SITE_MARKERS = ("site-packages", "dist-packages")
# Modules that decide where and whether a value is written, never what it is: atomic writes,
# errors, resource limits, these keys. Their code is not part of any key (nor is any
# exception class), so mending a message or a write does not recompute the values.
NOT_VALUE_CODE = ("code.io_utils", "code.errors", "code.resources", "code.keys")


def file_digest(path: Path) -> str:
    """Short content hash of a file (blake2b, 16 hex digits)."""
    h = hashlib.blake2b(digest_size=8)
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bytes_digest(parts: Iterable[bytes | str]) -> str:
    """Short hash (blake2b, 16 hex digits) of a sequence of byte strings or texts, each
    delimited (arrays: ``array.tobytes()``; several files: names and contents)."""
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def settings_digest(settings: Any) -> str:
    """Short hash of any JSON-serialisable settings (keys sorted)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=6).hexdigest()


def key_of(kind: str, **parts) -> str:
    """The SHA-256 naming a value of ``kind`` made from ``parts`` (JSON-able)."""
    text = json.dumps({"kind": kind, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_DIGESTS: dict[tuple[str, int, int, str], str] = {}
DIGEST_MEMORY = "file_digests.jsonl"  # under $XDG_CACHE_HOME/cadenza-clip: one [entry, digest] a line
DIGEST_MEMORY_MAX_BYTES = 1_000_000  # past this (~5,000 files) the file keeps its newest half
_MEMORY: dict[str, dict[str, str]] = {}  # per memory file: its entries, read once in this process


def remembered_digest(path: Path, *, algorithm: str = "blake2b") -> str:
    """``file_digest(path)`` (``algorithm="blake2b"``) or the file's full SHA-256 hex
    digest (``"sha256"``), remembered by (path, size, mtime) in this process and in
    ``$XDG_CACHE_HOME/cadenza-clip/file_digests.jsonl`` across runs: that file is read once
    per process and a new digest is appended as one line (never the whole file rewritten);
    past ``DIGEST_MEMORY_MAX_BYTES`` it is cut to its newest half, so it stays bounded."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, algorithm)
    if key in _DIGESTS:
        return _DIGESTS[key]
    memory = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cadenza-clip" / DIGEST_MEMORY
    entry = f"{key[0]}|{key[1]}|{key[2]}" + ("" if algorithm == "blake2b" else f"|{algorithm}")
    digest = _remembered(memory).get(entry)
    if digest is None:
        if algorithm == "blake2b":
            digest = file_digest(path)
        else:
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, algorithm).hexdigest()
        _remember(memory, entry, digest)
    _DIGESTS[key] = digest
    return digest


def _memory_lines(memory: Path) -> list[tuple[str, str]]:
    try:
        text = memory.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    pairs = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # a line cut by a crash: that digest is computed again
            continue
        if isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
            pairs.append((item[0], item[1]))
    return pairs


def _remembered(memory: Path) -> dict[str, str]:
    if str(memory) not in _MEMORY:
        _MEMORY[str(memory)] = dict(_memory_lines(memory))
    return _MEMORY[str(memory)]


def _remember(memory: Path, entry: str, digest: str) -> None:
    _remembered(memory)[entry] = digest
    line = json.dumps([entry, digest]) + "\n"
    try:
        memory.parent.mkdir(parents=True, exist_ok=True)
        with open(memory, "a", encoding="utf-8") as f:  # one short append: concurrent runs do not clash
            f.write(line)
        if memory.stat().st_size > DIGEST_MEMORY_MAX_BYTES:
            kept, size = [], 0
            for pair in reversed(list(dict(_memory_lines(memory)).items())):
                size += len(json.dumps(list(pair))) + 1
                if size > DIGEST_MEMORY_MAX_BYTES // 2:
                    break
                kept.append(pair)
            write_text_atomic(memory, "".join(json.dumps(list(p)) + "\n" for p in reversed(kept)))
            _MEMORY[str(memory)] = dict(reversed(kept))
    except OSError:
        pass  # a read-only home: the digest is still remembered in this process


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each distribution in ``packages`` ("absent" when missing)."""
    out = {}
    for package in packages:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


@functools.lru_cache(maxsize=None)
def code_digest(*objects, packages: tuple[str, ...] = ()) -> str:
    """A digest of the code of ``objects`` (functions, classes, compiled functions,
    ``functools.partial``) and of everything of the project they use, plus the installed
    versions of ``packages``.

    What is covered: see ``code_parts``. Editing a function one of them calls changes the
    digest; adding, editing or removing code they do not reach does not. Remembered per
    process (``code_digest.cache_clear()`` forgets).
    """
    h = hashlib.sha256()
    for name, text in sorted(code_parts(*objects).items()):
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    for package, version in sorted(package_versions(tuple(packages)).items()):
        h.update(f"{package}=={version}\0".encode())
    return h.hexdigest()[:24]


def code_parts(*objects) -> dict[str, str]:
    """Qualified name -> normalised code (or constant value) of ``objects`` and of every
    project function, class, compiled function and module constant reachable from their
    sources by name, transitively, less plumbing (``NOT_VALUE_CODE``, exception classes);
    for tests and for explaining a key."""
    parts: dict[str, str] = {}
    todo = [_unwrap(o) for o in objects]
    while todo:
        obj = todo.pop()
        name = _qualified_name(obj)
        if name in parts:
            continue
        text, uses = _describe(obj)
        parts[name] = text
        for used_name, value in uses:
            if _is_code(value):
                if _makes_values(_unwrap(value)):
                    todo.append(_unwrap(value))
            else:
                constant = _constant_text(value)
                if constant is not None:
                    parts.setdefault(used_name, constant)
    return parts


def _unwrap(obj):
    """The function behind a partial, a bound method, a compiled (numba) or wrapped function."""
    while True:
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, types.MethodType):
            obj = obj.__func__
        elif hasattr(obj, "py_func") and callable(obj.py_func):  # numba dispatchers
            obj = obj.py_func
        elif inspect.isfunction(obj) and hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        else:
            return obj


def _is_code(value) -> bool:
    value = _unwrap(value)
    return (inspect.isfunction(value) or inspect.isclass(value)) and _is_project(value)


def _makes_values(obj) -> bool:
    """False for plumbing (``NOT_VALUE_CODE``) and exception classes, which are not keyed."""
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return False
    return getattr(obj, "__module__", None) not in NOT_VALUE_CODE


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[Path, ...]:
    """Where the standard library and installed packages live (covered by versions, not code)."""
    paths = sysconfig.get_paths()
    return tuple({Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})


@functools.lru_cache(maxsize=None)
def _is_project_file(filename: str) -> bool:
    """Code of the user's own (the project, its tests, a script): not the standard library or
    an installed package."""
    path = Path(filename).resolve()
    return not any(m in path.parts for m in _SITE_MARKERS) and \
        not any(path.is_relative_to(root) for root in _installed_roots())


def _is_project(obj) -> bool:
    """Whether ``obj`` (a function, class or module) is defined in this project's files."""
    if inspect.isfunction(obj):
        filename = obj.__code__.co_filename
        if filename.startswith("<"):  # defined by exec or in a REPL: code of the caller's own
            return True
        return _is_project_file(filename)
    module = obj if isinstance(obj, types.ModuleType) else sys.modules.get(getattr(obj, "__module__", "") or "")
    filename = getattr(module, "__file__", None)
    if filename is None:  # defined by exec or in a REPL: code of the caller's own
        return not isinstance(obj, types.ModuleType) and getattr(obj, "__module__", None) in (None, "__main__")
    return _is_project_file(filename)


def _qualified_name(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(type(obj)))}"


def _globals_of(obj) -> dict:
    if inspect.isfunction(obj):
        return obj.__globals__
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    return vars(module) if module is not None else {}


def _describe(obj) -> tuple[str, list[tuple[str, Any]]]:
    """``obj``'s normalised code and the (qualified name, value) of each global it names."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):  # no source file (exec, a REPL): the bytecode
        return _bytecode_text(obj), _uses_by_bytecode(obj)
    _strip_docstrings(tree)
    return ast.dump(tree, annotate_fields=False), _uses(tree, _globals_of(obj), obj)


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def _uses(tree: ast.AST, namespace: dict, owner) -> list[tuple[str, Any]]:
    """The globals of ``namespace`` the source names, with attributes of project modules
    (``module.function``) resolved."""
    module_name = getattr(owner, "__module__", "?")
    found: list[tuple[str, Any]] = []
    attributes: set[int] = set()  # Name nodes already handled as the base of an attribute chain
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and isinstance(namespace.get(base.id), types.ModuleType):
                value = namespace[base.id]
                if not _is_project(value):
                    continue
                attributes.add(id(base))
                path = [base.id]
                for attr in reversed(chain):
                    if not isinstance(value, types.ModuleType) or not hasattr(value, attr):
                        break
                    value, path = getattr(value, attr), path + [attr]
                if not _is_state(path[-1], value):
                    found.append((f"{getattr(value, '__name__', module_name)}:{'.'.join(path)}", value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in attributes and node.id in namespace:
            value = namespace[node.id]
            if isinstance(value, types.ModuleType) and not _is_project(value) or _is_state(node.id, value):
                continue
            found.append((f"{module_name}.{node.id}", value))
    return found


def _is_state(name: str, value) -> bool:
    """A private mutable container (``_CACHE = {}``) is a module's state, not a setting."""
    return name.startswith("_") and isinstance(value, (dict, list, set))


def _uses_by_bytecode(obj) -> list[tuple[str, Any]]:
    functions = [obj] if inspect.isfunction(obj) else [
        v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else []
    namespace = _globals_of(obj)
    names = {n for f in functions for n in _code_names(f.__code__)}
    module_name = getattr(obj, "__module__", "?")
    return [(f"{module_name}.{n}", namespace[n]) for n in sorted(names)
            if n in namespace and not _is_state(n, namespace[n])]


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _bytecode_text(obj) -> str:
    functions = [obj] if inspect.isfunction(obj) else [
        v for _, v in sorted(vars(obj).items()) if inspect.isfunction(v)] if inspect.isclass(obj) else []
    return "\n".join(_code_object_text(f.__code__) for f in functions) or repr(obj)


def _code_object_text(code: types.CodeType) -> str:
    parts = [code.co_code.hex(), repr(code.co_names)]
    for const in code.co_consts:
        parts.append(_code_object_text(const) if isinstance(const, types.CodeType) else repr(const))
    return "|".join(parts)


def _holds_code(value) -> bool:
    values = value.values() if isinstance(value, dict) else value
    return any(callable(v) for v in values)


def _constant_text(value, depth: int = 0) -> str | None:
    """A stable text of a module constant (numbers, strings, containers of them, arrays,
    dataclass instances, enum members); None for anything else (registries of code, loggers,
    locks, objects of installed packages' classes), which is not part of a key."""
    if depth > 20 or callable(value):  # code is followed by name, never as a value
        return None
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, (tuple, list, set, frozenset, dict)) and _holds_code(value):
        return None  # a registry (name -> model, ...): each entry used is keyed by its own code
    if isinstance(value, (tuple, list, set, frozenset)):
        items = [_constant_text(v, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            items = sorted(map(str, items))
        return f"{type(value).__name__}({', '.join(map(str, items))})"
    if isinstance(value, dict):
        items = sorted(f"{_constant_text(k, depth + 1)}: {_constant_text(v, depth + 1)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if type(value).__module__ == "numpy" and hasattr(value, "tobytes"):
        return f"array({value.dtype}, {getattr(value, 'shape', ())}, {hashlib.sha256(value.tobytes()).hexdigest()})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f"{f.name}={_constant_text(getattr(value, f.name), depth + 1)}" for f in dataclasses.fields(value)]
        return f"{type(value).__qualname__}({', '.join(fields)})"
    return None

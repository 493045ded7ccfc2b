"""Code keys cover a function's own code and the code it calls, nothing beside it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap

import pytest

from code.keys import code_digest, code_parts, file_digest, key_of, settings_digest

MODULE = '''
import numba

SCALE = 2.0
_SEEN = set()  # state, not a setting


def helper(x):
    return x * SCALE


@numba.njit(cache=False)
def compiled(x):
    return x + 1.0


def model(x, levels):
    """A model that calls a helper."""
    _SEEN.add(1)
    return helper(x) + compiled(1.0)


def unrelated(x):
    return x - 1


class Base:
    gain = 1.0

    def __call__(self, x, levels):
        return helper(x) * self.gain


class Child(Base):
    pass


REGISTRY = {"model": model, "unrelated": unrelated}


def factory(name):
    return REGISTRY[name]
'''

_counter = itertools.count()


def _load(tmp_path, source: str):
    """Import ``source`` as a fresh module from a file of its own (a user's code)."""
    path = tmp_path / f"probe_{next(_counter)}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


NAMES = ("model", "unrelated", "Base", "Child", "factory", "helper")


def _changed(tmp_path, old: str, new: str) -> set[str]:
    before, after = _load(tmp_path, MODULE), _load(tmp_path, MODULE.replace(old, new))
    return {n for n in NAMES if _texts(getattr(before, n)) != _texts(getattr(after, n))}


def _texts(obj) -> list[tuple[str, str]]:
    """``obj``'s code parts without the module's name (each load has its own)."""
    return sorted((name.split(".", 1)[1], text) for name, text in code_parts(obj).items())


def test_a_function_key_follows_what_it_calls(tmp_path):
    assert _changed(tmp_path, "return x * SCALE", "return x * SCALE * 3") == {"model", "Base", "Child", "helper"}


def test_a_module_constant_it_reads_is_part_of_the_key(tmp_path):
    assert _changed(tmp_path, "SCALE = 2.0", "SCALE = 2.5") == {"model", "Base", "Child", "helper"}


def test_a_compiled_function_is_followed_to_its_source(tmp_path):
    assert _changed(tmp_path, "return x + 1.0", "return x + 2.0") == {"model"}


def test_editing_code_beside_it_changes_nothing(tmp_path):
    assert _changed(tmp_path, "return x - 1", "return x - 7") == {"unrelated"}


def test_adding_an_entry_to_a_registry_changes_no_key(tmp_path):
    grown = '"unrelated": unrelated, "other": lambda x, levels: x}'
    assert _changed(tmp_path, '"unrelated": unrelated}', grown) == set()


def test_a_base_class_is_part_of_a_subclass_key(tmp_path):
    assert _changed(tmp_path, "gain = 1.0", "gain = 0.5") == {"Base", "Child"}


def test_comments_formatting_and_docstrings_change_no_key(tmp_path):
    assert _changed(tmp_path, "return helper(x) + compiled(1.0)",
                    "return (helper(x)  # the helper\n            + compiled(1.0))") == set()
    assert _changed(tmp_path, '"""A model that calls a helper."""', '"""Reworded."""') == set()


def test_private_state_is_not_part_of_the_key(tmp_path):
    module = _load(tmp_path, MODULE)
    before = code_digest(module.model)
    module._SEEN.update(range(10))
    code_digest.cache_clear()
    assert code_digest(module.model) == before


def test_code_without_a_source_file_is_keyed_by_its_bytecode():
    a, b = {}, {}
    exec("def f(x, a):\n    return x * 2\n", a)
    exec("def f(x, a):\n    return x * 3\n", b)
    assert code_digest(a["f"]) != code_digest(b["f"])


def test_package_versions_are_part_of_the_key(tmp_path):
    module = _load(tmp_path, MODULE)
    assert code_digest(module.helper, packages=("numpy",)) != code_digest(module.helper)


def test_the_shipped_models_keys_cover_what_they_use():
    from code.hearing_loss.simulator import simulate_hearing_loss
    from code.models.hearing_aid_models import MODELS

    def names(entry):
        return set(code_parts(entry))

    nlr1, lyricaid, identity = names(MODELS["NLR1"]), names(MODELS["LyricAid"]), names(MODELS["identity"])
    assert "code.models.prescriptions._compress" in nlr1
    assert nlr1 <= lyricaid  # LyricAid uses NLR1 as its level reference
    assert identity == {"code.models.hearing_aid_models.identity"}
    assert "code.models.lyricaid.LyricAid" in names(MODELS["LyricAidLevelOnly"])
    simulator = names(simulate_hearing_loss)
    assert {"code.hearing_loss.fast.simulate_ear", "code.hearing_loss.torch_ear.simulate_numpy"} <= simulator


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], "x"])
def test_settings_keys_are_stable(value):
    assert settings_digest(value) == settings_digest(value)
    assert key_of("k", v=value) == key_of("k", v=value) != key_of("other", v=value)


def test_file_digest_follows_the_content(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    first = file_digest(path)
    path.write_bytes(b"abd")
    assert file_digest(path) != first

"""The API reference is complete: every public object of hkjax has a docstring, and the
docstring of every public function, method and class names each of its parameters (for a
class: the arguments of its constructor).

"Public" is what a user reaches from ``hkjax.__all__``: the names listed there, the names
listed in the ``__all__`` of the public submodules it lists (recursively), and the public
methods and properties (plus ``__call__``) of every public class, including those a class
inherits from hkjax base classes. Constants and type aliases (tuples, dicts, numbers) are
skipped: Python gives them no docstring of their own, and the module docstrings describe them.

A method may inherit its docstring from the base-class method it overrides
(:func:`inspect.getdoc` does this): that is accepted, since the base documents the contract.
A class must carry its own docstring (an inherited class docstring, or the ``Name(field=...)``
signature that :mod:`dataclasses` writes when there is none, does not count).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types

import hkjax

#: Parameters a docstring need not name: ``self``/``cls`` everywhere, and single
#: ``(qualified name, parameter)`` pairs, each with its reason.
EXEMPT_PARAMETERS = {
    "self",
    "cls",
}

#: Classes whose constructor arguments are documented elsewhere than in the class docstring.
#: ``Config``: one field per command-line option, each documented by the ``help`` text in its
#: field metadata (what ``hkjax train --help`` prints); :func:`test_config_fields_have_help`
#: checks those instead.
#: Configuration dataclasses: each field is documented by the docstring under it (the
#: command's help text), checked by test_config_fields_have_help.
EXEMPT_CONSTRUCTORS = {f"hkjax.config.{name}" for name in (
    "Config", "NetworkConfig", "DataConfig", "SolverConfig", "OptimizationConfig", "TrainingConfig", "EvaluationConfig",
    "EditingConfig", "RetrievalConfig")}


def _is_ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("hkjax")


def _public_members(cls):
    """``(name, member)`` for the public methods and properties of ``cls``, walking the hkjax
    classes of its MRO (so inherited members are listed under the subclass)."""
    seen = set()
    for base in cls.__mro__:
        if not _is_ours(base):
            continue
        for name, raw in vars(base).items():
            if name in seen or (name.startswith("_") and name != "__call__"):
                continue
            seen.add(name)
            if isinstance(raw, property):
                yield name, raw
            elif isinstance(raw, (classmethod, staticmethod)) or inspect.isfunction(raw):
                yield name, getattr(cls, name)
            elif callable(raw) and hasattr(raw, "__wrapped__"):  # e.g. functools.wraps
                yield name, getattr(cls, name)
            # anything else is a field, a constant or a class variable


def public_api():
    """Every public object as ``(qualified name, object)``, each once."""
    out, seen = [], set()

    def visit_module(module, prefix):
        for name in module.__all__:
            obj = getattr(module, name)
            qual = f"{prefix}.{name}"
            if isinstance(obj, types.ModuleType):
                if obj.__name__.startswith("hkjax") and obj.__name__ not in seen:
                    seen.add(obj.__name__)
                    out.append((obj.__name__, obj))
                    visit_module(obj, obj.__name__)
            elif inspect.isclass(obj):
                if _is_ours(obj) and id(obj) not in seen:
                    seen.add(id(obj))
                    out.append((qual, obj))
                    out.extend((f"{qual}.{n}", m) for n, m in _public_members(obj))
            elif inspect.isfunction(obj) and _is_ours(obj) and id(obj) not in seen:
                seen.add(id(obj))
                out.append((qual, obj))
            # constants (tuples, dicts, ints, bytes) and type aliases carry no docstring

    visit_module(hkjax, "hkjax")
    return out


API = public_api()


def _own_docstring(obj) -> str:
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return ""  # the signature dataclasses writes in place of a docstring
        return inspect.cleandoc(doc)
    return inspect.getdoc(obj) or ""


def _parameters(obj, qual=""):
    if isinstance(obj, (property, types.ModuleType)) or qual in EXEMPT_CONSTRUCTORS:
        return []
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return []  # exceptions take a message
    try:
        return list(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return []


def _mentions(doc: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", doc) is not None


def test_the_walk_finds_the_api():
    names = {q for q, _ in API}
    for expected in (
        "hkjax.Network",
        "hkjax.Network.energy",
        "hkjax.relax",
        "hkjax.config.Config.replace",
        "hkjax.lagrangians.ReLU.activation",
        "hkjax.interactions.ReLU.phi",
        "hkjax.synapses.Hopfield.energy",
        "hkjax.tasks.Classification.example_loss",
        "hkjax.plotting.energy_trace",
    ):
        assert expected in names, expected
    assert len(API) > 200, len(API)


def test_every_public_object_has_a_docstring():
    missing = [q for q, obj in API if not _own_docstring(obj).strip()]
    assert not missing, f"{len(missing)} public objects without a docstring:\n  " + "\n  ".join(missing)


def test_docstrings_name_every_parameter():
    gaps = []
    for qual, obj in API:
        doc = _own_docstring(obj)
        if not doc:
            continue  # reported by the test above
        names = [p for p in _parameters(obj, qual) if p not in EXEMPT_PARAMETERS and (qual, p) not in EXEMPT_PARAMETERS]
        absent = [p for p in names if not _mentions(doc, p)]
        if absent:
            gaps.append(f"{qual}: {', '.join(absent)}")
    assert not gaps, f"{len(gaps)} docstrings miss parameters:\n  " + "\n  ".join(gaps)


def test_exemptions_are_live():
    """An exemption that no longer matches a parameter (or a class) is dead: remove it."""
    objs = dict(API)
    for exempt in EXEMPT_PARAMETERS:
        if isinstance(exempt, tuple):
            qual, param = exempt
            assert qual in objs and param in inspect.signature(objs[qual]).parameters, exempt
    for qual in EXEMPT_CONSTRUCTORS:
        assert qual in objs and inspect.isclass(objs[qual]), qual


def test_config_fields_have_help():
    """Every option of the configuration dataclasses (the commands' flags) is documented: a
    docstring under the field, or ``help=`` in its ``tyro.conf.arg``; a field that holds a
    group is documented by the group's class docstring."""
    import ast
    import pathlib

    bare = []
    for module in ("config.py", "cli.py", "_sweep_cli.py"):
        tree = ast.parse((pathlib.Path(hkjax.__file__).parent / module).read_text())
        for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
            if not any("dataclass" in ast.unparse(d) for d in cls.decorator_list):
                continue
            body = cls.body
            for i, node in enumerate(body):
                if not isinstance(node, ast.AnnAssign) or "ClassVar" in ast.unparse(node.annotation):
                    continue
                name = node.target.id
                documented = (i + 1 < len(body) and isinstance(body[i + 1], ast.Expr)
                              and isinstance(body[i + 1].value, ast.Constant) and str(body[i + 1].value.value).strip())
                helped = "help=" in ast.unparse(node.annotation)
                group = ast.unparse(node.annotation).endswith(("Config", "Options"))
                if not (documented or helped or group):
                    bare.append(f"{module}:{cls.name}.{name}")
    assert not bare, f"options without help text: {bare}"

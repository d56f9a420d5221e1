"""A griffe extension that adapts hkjax's docstrings to mkdocstrings' Google-style parser.

hkjax's docstrings are Google-style sections (``Arguments:``, ``Returns:``, ``Raises:``)
written with reStructuredText inline markup, as ``help()`` and Sphinx read them. This
extension, loaded by ``mkdocs.yml``, makes them render as Markdown:

* reStructuredText links, ```text <https://...>`_``, become Markdown links;
* **roles** (``:func:`relax```, ``:class:`~hkjax.Network```, ``:data:``, ``:meth:``,
  ``:attr:``, ``:mod:``) become code spans, linked to their entry in the API reference when
  the target is an hkjax object that the reference renders, plain code otherwise (Python,
  JAX, Diffrax objects; private helpers);
* ``#:`` comments above a module constant (Sphinx's convention) become its docstring, so
  that documented constants (``CHECKPOINT_BYTES``, ``FORMULATIONS``, ...) are rendered and
  can be linked;
* parameter entries that document several parameters at once (``t0, t1: time interval``)
  are checked name by name against the signature (griffe's own check, switched off in
  ``mkdocs.yml``, would take ``"t0, t1"`` for one unknown name): a name that is not a
  parameter is reported as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe

#: The modules the API reference renders: ``docs/api/<name>.md`` holds ``::: hkjax.<name>``.
DOCUMENTED = {p.stem for p in (Path(__file__).resolve().parent / "api").glob("*.md")} - {"index"}

_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|obj|exc|const):`(~?)([^`<>]+?)`")
_RST_LINK = re.compile(r"(?<![:`])`([^`<>]+?)\s*<(https?://[^>`]+)>`__?")
_PARAM_SECTIONS = {"args", "arguments", "params", "parameters"}
_SECTION = re.compile(r"^(\s*)(\w[\w ]*):\s*$")

logger = griffe.get_logger("griffe_hkjax")


def _walk(obj):
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _walk(member)


def _rendered(obj) -> bool:
    """Whether mkdocstrings renders ``obj`` in the API reference (so a link to it resolves):
    a documented module, or a public, documented member of one (in its ``__all__`` when it
    has one), every level between them documented too."""
    parts = obj.path.split(".")
    if parts[0] != "hkjax" or len(parts) < 2 or parts[1] not in DOCUMENTED:
        return False
    if len(parts) == 2:
        return obj.is_module
    if any(p.startswith("_") and p != "__call__" for p in parts[2:]):
        return False
    node = obj
    while not node.is_module:
        if not node.has_docstring:
            return False
        node = node.parent
    first = obj.module.members.get(parts[2])
    if first is None or first.is_alias:
        return False
    exported = obj.module.exports
    return exported is None or parts[2] in {str(e) for e in exported}


def _target(scope, role: str, name: str):
    """The griffe object ``name`` refers to from ``scope``'s docstring, or ``None``."""
    collection = scope.modules_collection
    if name.startswith("hkjax."):
        candidates = [name]
    else:
        try:
            candidates = [scope.resolve(name)]
        except Exception:  # noqa: BLE001 - not a name in scope (a method of another class, ...)
            candidates = []
        if scope.is_class or scope.is_module:  # e.g. :meth:`energy` in a class docstring
            candidates.append(f"{scope.path}.{name}")
        if scope.parent is not None and scope.parent.is_class:
            candidates.append(f"{scope.parent.path}.{name}")
    for path in candidates:
        try:
            obj = collection[path]
        except Exception:  # noqa: BLE001 - outside hkjax (jax, diffrax, ...)
            continue
        try:
            obj = obj.final_target if obj.is_alias else obj
        except Exception:  # noqa: BLE001 - an alias griffe cannot resolve
            continue
        if obj.is_module and role in ("func", "class", "meth", "obj"):
            # ``hkjax.relax`` the function is re-exported over ``hkjax.relax`` the module
            inner = obj.members.get(path.rsplit(".", 1)[-1])
            if inner is not None:
                obj = inner.final_target if inner.is_alias else inner
        return obj
    return None


def _rewrite_roles(scope, text: str) -> str:
    def sub(match):
        role, short, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        if role in ("func", "meth") and not shown.endswith(")"):
            shown += "()"
        obj = _target(scope, role, name)
        if obj is not None and _rendered(obj):
            return f"[`{shown}`][{obj.path}]"
        return f"`{shown}`"

    return _ROLE.sub(sub, _RST_LINK.sub(r"[\1](\2)", text))


def _comment_docstring(attr) -> str | None:
    """The ``#:`` comment lines right above ``attr`` (Sphinx's attribute-comment convention)."""
    try:
        lines = attr.module.lines
    except Exception:  # noqa: BLE001
        return None
    if not lines or attr.lineno is None:
        return None
    out = []
    i = attr.lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        out.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    return " ".join(out) or None


def _parameter_names(obj) -> set[str] | None:
    if obj.is_function:
        return {p.name for p in obj.parameters}
    if obj.is_class:
        names = set()
        try:
            names |= {p.name for p in obj.parameters}
        except Exception:  # noqa: BLE001
            pass
        for cls in [obj, *getattr(obj, "mro", lambda: [])()]:
            names |= {n for n, m in cls.members.items() if not m.is_alias and m.is_attribute}
        return names
    return None


def _check_parameters(obj) -> None:
    """Every name of every ``Arguments:`` entry is a parameter (or, for a class, a field)."""
    known = _parameter_names(obj)
    if known is None or obj.docstring is None:
        return
    lines = obj.docstring.value.splitlines()
    in_section, indent = False, None
    for k, line in enumerate(lines):
        m = _SECTION.match(line)
        if m and not line.startswith(" " * ((indent or 0) + 1)):
            in_section = m.group(2).strip().lower() in _PARAM_SECTIONS
            indent = None
            continue
        if not in_section or not line.strip():
            continue
        lead = len(line) - len(line.lstrip())
        if indent is None:
            indent = lead
        if lead < indent:
            in_section = False
            continue
        if lead > indent or ":" not in line:
            continue
        names = line.split(":", 1)[0].strip()
        if "(" in names:
            names = names.split("(", 1)[0]
        for name in (n.strip().lstrip("*") for n in names.split(",")):
            if name and name not in known:
                logger.warning(
                    f"{obj.relative_filepath}:{(obj.docstring.lineno or 0) + k}: {obj.path}: "
                    f"parameter {name!r} of the docstring does not appear in the signature"
                )


class HkjaxDocstrings(griffe.Extension):
    """See the module docstring."""

    def on_attribute_instance(self, *, node, attr, agent, **kwargs) -> None:
        """Take a ``#:`` comment above a module or class constant as its docstring."""
        if attr.docstring is None:
            text = _comment_docstring(attr)
            if text:
                attr.docstring = griffe.Docstring(text, lineno=attr.lineno, parent=attr)

    def on_package(self, *, pkg, **kwargs) -> None:
        """Rewrite the roles of every docstring of the package, then check parameter names."""
        if pkg.name != "hkjax":
            return
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite_roles(obj, obj.docstring.value)
        for obj in _walk(pkg):
            if obj.docstring is not None and (obj.is_function or obj.is_class):
                _check_parameters(obj)

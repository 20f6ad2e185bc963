"""Make lava-nc 0.10.0 importable on Python 3.11, without editing site-packages.

Why
---
``lava/magma/compiler/var_model.py`` in lava-nc 0.10.0 declares::

    @dataclass
    class ByteEncoder:
        ...

    @dataclass
    class CoreEncoder:
        x: ByteEncoder = ByteEncoder()
        ...

A plain ``@dataclass`` sets ``__hash__ = None`` (it defines ``__eq__``), and
since Python 3.11 :mod:`dataclasses` rejects any unhashable default as a
"mutable default" (it used to reject only list, dict and set).  So importing
that module -- and with it almost all of Lava: the compiler, ``Process.run``,
every process model -- fails with::

    ValueError: mutable default <class '...ByteEncoder'> for field x is not
    allowed: use default_factory

Lava is archived upstream and no release will fix this, so the project
carries the fix, here and nowhere else.

How
---
:func:`install` puts a :class:`importlib.abc.MetaPathFinder` first in
:data:`sys.meta_path`.  It answers for exactly one module name,
``lava.magma.compiler.var_model``, and declines everything else.  The spec it
returns points at the installed ``var_model.py`` but carries our loader, a
:class:`importlib.machinery.SourceFileLoader` subclass whose ``get_code``

1. reads the original source from site-packages,
2. replaces the one line ``@dataclass`` directly above ``class ByteEncoder:``
   by ``@dataclass(unsafe_hash=True)`` -- ``ByteEncoder`` instances become
   hashable, so 3.11 accepts them as defaults; the line count is unchanged, so
   tracebacks still point at the right lines of the installed file.  The
   substitution is exact and checked: if the text is not there exactly once,
   an :class:`ImportError` names the lava-nc version this was written for,
   the version found and the text looked for;
3. compiles the rewritten source itself.

Overriding ``get_data`` alone would not do: ``SourceFileLoader.get_code``
prefers the installed ``__pycache__/var_model.cpython-311.pyc`` whenever its
recorded mtime matches the source, and that bytecode is the unpatched one.
Our ``get_code`` never reads that ``.pyc`` and never writes one either, so
nothing in site-packages changes (the module's ``__cached__`` still names the
standard ``.pyc`` location, as importlib derives it from ``__file__``; it is
not used).

Sharing the instances between dataclass defaults is what Python 3.10 did for
the same code; Lava never mutates these encoders, so this is the behaviour
Lava was written and tested against.

:func:`install` is idempotent and does nothing when the fix is not needed:
when this Python accepts unhashable dataclass defaults (before 3.11), when
Lava is not installed, when ``var_model`` is already imported, or when the
installed source no longer uses ``ByteEncoder()`` as a default.  Lava's
runtime starts its workers with ``fork``, so they inherit the finder.  (Lava
calls ``multiprocessing.set_start_method('fork')`` when its runtime is
imported, which raises ``RuntimeError: context has already been set`` if
anything chose a start method before; that is Lava's, not this fix's.)

Usage::

    from neurosim.hardware_targets.lava.compat import import_lava
    import_lava()                 # then import lava.* as usual
    from lava.proc.lif.process import LIF
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from types import ModuleType

__all__ = ["install", "uninstall", "is_installed", "import_lava", "lava_version",
           "patch_source", "LavaCompatError", "LavaCompatFinder",
           "TARGET_MODULE", "EXPECTED_LAVA_VERSION"]

#: The one module this fix touches.
TARGET_MODULE = "lava.magma.compiler.var_model"
#: The lava-nc release whose source the substitution was written against.
EXPECTED_LAVA_VERSION = "0.10.0"

_DIST_NAME = "lava-nc"
# The exact text (after universal-newline decoding) and what replaces it.
_OLD = "@dataclass\nclass ByteEncoder:\n"
_NEW = "@dataclass(unsafe_hash=True)\nclass ByteEncoder:\n"
# What makes the module fail on 3.11: ByteEncoder instances used as defaults.
_SYMPTOM = "= ByteEncoder()"


def lava_version() -> str | None:
    """Version of the installed Lava: ``lava.__version__`` if an imported
    ``lava`` has one (0.10.0 is a namespace package without it), else the
    ``lava-nc`` distribution's version; ``None`` if neither is known."""
    lava = sys.modules.get("lava")
    version = getattr(lava, "__version__", None)
    if version:
        return str(version)
    try:
        return importlib.metadata.version(_DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None


class LavaCompatError(ImportError):
    """The installed Lava is not the source this fix was written for."""


def _mismatch_error(count: int, path: str) -> LavaCompatError:
    return LavaCompatError(
        f"neurosim's Python 3.11 fix for Lava cannot be applied to {path}: it "
        f"expects the lava-nc {EXPECTED_LAVA_VERSION} source, where the text "
        f"{_OLD!r} occurs exactly once, but it occurs {count} times in the "
        f"installed lava-nc {lava_version() or '(version unknown)'}. Install "
        f"lava-nc=={EXPECTED_LAVA_VERSION} or update "
        "neurosim.hardware_targets.lava.compat for this version.",
        name=TARGET_MODULE, path=path)


def patch_source(source: str, path: str = TARGET_MODULE) -> str:
    """Return *source* with the ``ByteEncoder`` decorator made hashable.

    Raises :class:`LavaCompatError` (an :class:`ImportError`) unless the
    expected text occurs exactly once.
    """
    count = source.count(_OLD)
    if count != 1:
        raise _mismatch_error(count, path)
    return source.replace(_OLD, _NEW, 1)


class _PatchedVarModelLoader(importlib.machinery.SourceFileLoader):
    """Loads ``var_model.py`` from its source with the fix applied; never
    reads nor writes bytecode caches."""

    def get_source(self, fullname):
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        return patch_source(source, path)

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_source(fullname), path)


class LavaCompatFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that answers only for :data:`TARGET_MODULE`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            # Not installed, or not as a plain .py file: leave it to the others.
            return None
        loader = _PatchedVarModelLoader(fullname, spec.origin)
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)

    def __repr__(self):
        return f"<{type(self).__name__} for {TARGET_MODULE}>"


def _finders() -> list:
    return [f for f in sys.meta_path if isinstance(f, LavaCompatFinder)]


def is_installed() -> bool:
    """Whether the finder is in :data:`sys.meta_path`."""
    return bool(_finders())


def _python_rejects_instance_defaults() -> bool:
    """Whether this Python refuses an instance of a plain dataclass as a
    field default (3.11 and later): the exact construct Lava uses."""
    @dataclasses.dataclass
    class Inner:
        a: int = 0

    try:
        @dataclasses.dataclass
        class Outer:
            inner: Inner = Inner()
    except ValueError:
        return True
    return False


def _installed_source() -> str | None:
    """Source of the installed, unpatched target module, or ``None`` if Lava
    (as a plain source install) is not there.  Imports only Lava's parent
    packages, which are namespace packages in 0.10.0."""
    try:
        spec = importlib.util.find_spec(TARGET_MODULE)
    except ModuleNotFoundError:
        return None
    if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        return None
    return importlib.util.decode_source(spec.loader.get_data(spec.origin))


def install() -> bool:
    """Install the fix if this Python and this Lava need it.

    Returns ``True`` if the finder is in place afterwards (including when it
    already was), ``False`` if nothing was needed.  Call it before anything
    imports ``lava.magma``; if ``var_model`` was already imported (so it
    works), nothing is done.
    """
    if is_installed():
        _move_first()
        return True
    if TARGET_MODULE in sys.modules or not _python_rejects_instance_defaults():
        return False
    source = _installed_source()
    if source is None or _SYMPTOM not in source:
        return False
    if _OLD not in source:
        # The source still uses ByteEncoder() defaults but not with the
        # decorator we know: maybe fixed another way.  Let the real import
        # decide instead of guessing.
        try:
            importlib.import_module(TARGET_MODULE)
            return False
        except ValueError as exc:
            raise _mismatch_error(0, TARGET_MODULE) from exc
    sys.meta_path.insert(0, LavaCompatFinder())
    return True


def _move_first() -> None:
    finders = _finders()
    for f in finders:
        sys.meta_path.remove(f)
    sys.meta_path.insert(0, finders[0])


def uninstall() -> None:
    """Remove the finder (an already-imported ``var_model`` stays imported)."""
    for f in _finders():
        sys.meta_path.remove(f)


def import_lava() -> ModuleType:
    """Install the fix, import ``lava`` and the fixed module, return ``lava``.

    Importing :data:`TARGET_MODULE` here makes any remaining incompatibility
    show up now, with the Lava version in the message, rather than deep inside
    the first ``Process.run``.
    """
    install()
    version = lava_version()
    try:
        lava = importlib.import_module("lava")
        importlib.import_module(TARGET_MODULE)
    except LavaCompatError:
        raise
    except ImportError as exc:
        raise ImportError(
            f"Lava could not be imported (lava-nc {version or 'not installed'}; "
            f"neurosim supports lava-nc {EXPECTED_LAVA_VERSION}): {exc}") from exc
    except ValueError as exc:
        raise ImportError(
            f"lava-nc {version} failed to import on Python "
            f"{sys.version.split()[0]} even with neurosim's fix installed "
            f"(written for lava-nc {EXPECTED_LAVA_VERSION}): {exc}") from exc
    return lava

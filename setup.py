"""Build the compiled hot path; everything else about the package lives in pyproject.toml.

The Cython extensions are optional: when they cannot be built the package still installs and
``strongroom.privacy`` runs its pure-Python twin, with a warning. ``STRONGROOM_REQUIRE_NATIVE=1``
(CI, the container build) turns a failed build into an error instead.
"""

from __future__ import annotations

import os
import sys
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE_NATIVE = os.environ.get("STRONGROOM_REQUIRE_NATIVE", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
}
SOURCES = {
    "strongroom.privacy._scan_native": "native/scan.pyx",
    "strongroom.privacy._masks_native": "native/masks.pyx",
}


class OptionalBuildExt(build_ext):
    """Build the extensions, or fall back to the pure-Python twin with a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if REQUIRE_NATIVE:
            raise
        warnings.warn(
            f"strongroom: native extension not built ({exc}); using the pure-Python twin",
            stacklevel=1,
        )
        print(f"WARNING: strongroom native extension not built: {exc}", file=sys.stderr)


def extensions() -> list[Extension]:
    modules = [
        Extension(name, [path], extra_compile_args=["-O3"] if os.name == "posix" else [])
        for name, path in SOURCES.items()
    ]
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_NATIVE:
            raise
        warnings.warn("strongroom: Cython missing; using the pure-Python twin", stacklevel=1)
        return []
    try:
        return list(cythonize(modules, compiler_directives=DIRECTIVES, annotate=False))
    except Exception as exc:
        if REQUIRE_NATIVE:
            raise
        warnings.warn(f"strongroom: cythonize failed ({exc}); using the pure twin", stacklevel=1)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

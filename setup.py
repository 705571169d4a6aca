"""The optional compiled build: `GATEWAY_COMPILE=1 pip install .` compiles the hot modules with mypyc.

Metadata lives in pyproject.toml; this file only adds the C extensions when asked. Without
GATEWAY_COMPILE (or with 0) the install is pure Python and needs no compiler or mypy, so
`pip install -e '.[test]'` stays fast. When asked, pip's build environment gets mypy and what
mypy needs to check the code (the dependencies, the stubs), as black's build does; with
--no-build-isolation the current environment must have them. The compiled build is a regular
(non-editable) install: the extensions sit next to the sources and Python loads them first.
`gateway --version` says which build runs. An in-place build (`python setup.py build_ext --inplace`,
or .ci/compiled's, which CI runs the suite against) shadows the sources until its .so files are deleted. The module list is
gateway/build.py's HOT_MODULES.
"""

from __future__ import annotations

import os
import runpy
import sys
import tomllib

from setuptools import setup


def hot_paths() -> list[str]:
    modules = runpy.run_path(os.path.join("gateway", "build.py"))["HOT_MODULES"]
    return [os.path.join(*name.split(".")) + ".py" for name in modules]


def compile_requires() -> list[str]:
    """mypy, and everything `mypy --strict` reads types from, for pip's isolated build environment."""
    with open("pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    extras = project["optional-dependencies"]
    typed = [r for r in extras["test"] if r.startswith(("mypy", "types-", "asyncpg-stubs"))]
    return [*typed, *project["dependencies"], *extras["redis"], *extras["postgres"]]


if os.environ.get("GATEWAY_COMPILE", "0") in ("", "0"):
    setup()
else:
    try:
        from mypyc.build import mypycify
    except ImportError:
        # pip asks for the build requirements first (setuptools raises them out of setup());
        # anywhere else this is an environment without mypy.
        setup(setup_requires=compile_requires())
        raise SystemExit("GATEWAY_COMPILE=1 needs mypy (pip install mypy, or build without --no-build-isolation)") from None
    # pip runs this file for the metadata too; compile (a minute or two) only when building.
    metadata_only = any(arg in ("egg_info", "dist_info") for arg in sys.argv[1:])
    # mypyc writes its C sources under ./build unless GATEWAY_C_DIR names another folder (.ci/run's
    # in-place build keeps the checkout untouched but for the extensions it places and removes).
    setup(ext_modules=[] if metadata_only else mypycify(hot_paths(), opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
                                                        target_dir=os.environ.get("GATEWAY_C_DIR") or None))

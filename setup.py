"""Build hook: ship the surrogate weights of ``pretrained/`` inside the package.

``pretrained/delssome_dk68/`` (repository root) is the single source of the shipped DELSSOME
weights. Building a wheel copies its files to ``delssome_norms/_pretrained/delssome_dk68/`` in
the build tree (plain copies: wheels drop symbolic links), where
:func:`delssome_norms.surrogate.default_pretrained_path` finds them in an installed package.
Everything else is configured in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "pretrained"
TARGET = ("delssome_norms", "_pretrained")


class BuildPyWithPretrained(build_py):
    """``build_py`` that also copies every file of ``pretrained/<name>/`` into the package."""

    def run(self):
        super().run()
        for folder in sorted(p for p in SOURCE.iterdir() if p.is_dir()):
            dest = Path(self.build_lib, *TARGET, folder.name)
            self.mkpath(str(dest))
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    self.copy_file(str(f), str(dest / f.name))


setup(cmdclass={"build_py": BuildPyWithPretrained})

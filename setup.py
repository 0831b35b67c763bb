"""Builds facecascade's optional native kernels (``facecascade/ops/_native.c``).

Everything else is in pyproject.toml. The C file is compiled as plain shared libraries (no Python
or PyTorch headers; `facecascade.ops.native` loads them with ctypes): a baseline build and, on
x86-64, AVX2 (x86-64-v3) and AVX-512 (x86-64-v4) builds, of which the loader takes the best the
CPU runs. A failed build (no C compiler) is not an error: facecascade then runs PyTorch versions
of the same steps.
"""

import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# No fast-math and no FMA contraction: the kernels must round like the PyTorch code they replace.
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi"]
VARIANTS = {"": []}
if platform.machine().lower() in ("x86_64", "amd64"):
    VARIANTS.update({"_avx2": ["-march=x86-64-v3"], "_avx512": ["-march=x86-64-v4"]})


class BuildEachApart(build_ext):
    """Compiles each variant in its own temporary folder (they share one source file)."""

    def build_extension(self, ext):
        base = self.build_temp
        self.build_temp = f"{base}/{ext.name}"
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = base


setup(
    ext_modules=[
        Extension(
            f"facecascade.ops._native{suffix}",
            ["facecascade/ops/_native.c"],
            extra_compile_args=FLAGS + flags,
            optional=True,
        )
        for suffix, flags in VARIANTS.items()
    ],
    cmdclass={"build_ext": BuildEachApart},
)

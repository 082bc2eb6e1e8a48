"""Build of the compiled extension ``restore._C``.

The CPU kernels are always built. The CUDA kernels are built when torch was
built with CUDA and nvcc is found, or when ``FORCE_CUDA=1``. Metadata lives in
``pyproject.toml``; install with ``pip install --no-build-isolation -e .``
after torch.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _want_cuda() -> bool:
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True
    has_nvcc = CUDA_HOME is not None or shutil.which("nvcc") is not None
    return torch.version.cuda is not None and has_nvcc


def _openmp_flags() -> list[str]:
    """``-fopenmp`` for compiling where torch's CPU threads are OpenMP's (its Linux wheels).

    ``at::parallel_for`` in our kernels is a header template: compiled without OpenMP it
    runs every range on the calling thread. Only the compile gets the flag: the library
    does not link an OpenMP runtime of its own, its ``GOMP_*`` calls bind to the one
    libtorch_cpu loads (whatever torch named its copy), so there is one runtime and one
    thread count.
    """
    if sys.platform.startswith("linux") and torch.backends.openmp.is_available():
        return ["-fopenmp"]
    return []


def _extensions() -> list:
    cpu_sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "ops", "*.cpp")))
    if not cpu_sources:
        return []
    # torch's BuildExtension adds -std=c++20 (what its headers need) and, with
    # py_limited_api=True, -DPy_LIMITED_API for its minimum CPython.
    openmp = _openmp_flags()
    cxx_flags = ["-O3", "-fdiagnostics-color=always", *openmp]
    define_macros: list[tuple[str, str | None]] = []
    if _want_cuda():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
        cuda_sources = sorted(
            glob.glob(os.path.join("csrc", "ops", "cuda", "*.cu"))
            + glob.glob(os.path.join("csrc", "ops", "cuda", "*.cpp"))
        )
        return [
            CUDAExtension(
                "restore._C",
                cpu_sources + cuda_sources,
                extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
                define_macros=define_macros + [("WITH_CUDA", None)],
                py_limited_api=True,
            )
        ]
    return [
        CppExtension(
            "restore._C",
            cpu_sources,
            extra_compile_args={"cxx": cxx_flags},
            define_macros=define_macros,
            py_limited_api=True,
        )
    ]


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildExtension},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)

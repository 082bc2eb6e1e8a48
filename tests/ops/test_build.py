"""The build paths of the operators: CMake, nvcc compile checks, the fallback without restore._C.

These compile code, so they take tens of seconds; each skips (with the reason) when its
tool is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import restore
from restore.ops import has_ops

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "csrc" / "ops" / "cuda"
CU_SOURCES = sorted(CUDA_DIR.glob("*.cu"))
GLUE_SOURCES = sorted(CUDA_DIR.glob("*_glue.cpp"))
# The flags torch.utils.cpp_extension passes to nvcc for every extension.
TORCH_NVCC_FLAGS = [
    "-std=c++20",
    "-D__CUDA_NO_HALF_OPERATORS__",
    "-D__CUDA_NO_HALF_CONVERSIONS__",
    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-D__CUDA_NO_HALF2_OPERATORS__",
    "--expt-relaxed-constexpr",
]

# Runs in a fresh interpreter: the operators come from the CMake-built library, not restore._C.
LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["restore._C"] = None  # keep the setup.py build out of this process
    import torch
    import restore.ops as ops
    assert not ops.has_ops()
    torch.ops.load_library(sys.argv[1])
    torch.manual_seed(0)
    q = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    k = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    valid = torch.rand(2, 6, 7) < 0.7
    valid[:, :3, :3] = True
    index, score = torch.ops.restore.patch_best_match(q, k, valid, 3)
    ref_index, ref_score = ops.patch_best_match_reference(q, k, valid, 3)
    assert torch.equal(index, ref_index)
    torch.testing.assert_close(score, ref_score)
    sim = torch.ops.restore.patch_similarity(q, k, valid, 1)
    ref = ops.patch_similarity_reference(q, k, valid, 1)
    torch.testing.assert_close(sim, ref)
    out = torch.ops.restore.csa_propagate(q, ~valid, index, score)
    torch.testing.assert_close(out, ops.csa_propagate_reference(q, ~valid, index, score))
    mask = torch.rand(2, 1, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(
        torch.ops.restore.masked_gradient_penalty(q, mask, 1e-12),
        ops.masked_gradient_penalty_reference(q, mask),
    )
    print("loaded-and-matched")
    """
)


def _run_parallel(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(
            pool.map(
                lambda cmd: subprocess.run(
                    cmd, cwd=cwd, capture_output=True, text=True, timeout=300
                ),
                commands,
            )
        )


def test_extension_is_loaded_when_built():
    built = list(Path(restore.__file__).parent.glob("_C*.so")) + list(
        Path(restore.__file__).parent.glob("_C*.pyd")
    )
    if not built:
        pytest.skip("restore._C is not built in this checkout")
    assert has_ops(), (
        f"{built[0].name} exists but its operators are not registered (a stale build?)"
    )


def test_cpu_kernels_are_built_with_torchs_openmp():
    """``at::parallel_for`` is a header template: built without OpenMP it runs on one thread."""
    built = sorted(Path(restore.__file__).parent.glob("_C*.so"))
    if not built or not sys.platform.startswith("linux"):
        pytest.skip("restore._C is not built here, or not with GCC on Linux")
    if not torch.backends.openmp.is_available():
        pytest.skip("this torch does not use OpenMP threads")
    assert has_ops()  # loaded into this process, with its OpenMP runtime
    binary = built[0].read_bytes()
    assert b"GOMP_parallel" in binary, f"{built[0].name} was compiled without -fopenmp: its kernels run on one thread"
    assert b"libgomp" not in binary, f"{built[0].name} links an OpenMP runtime of its own instead of torch's"
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if "libgomp" in line}
    assert len(mapped) == 1, f"two OpenMP runtimes in one process: {sorted(mapped)}"


def test_public_ops_fall_back_to_references_without_the_extension():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["restore._C"] = None
        import torch
        import restore.ops as ops
        assert not ops.has_ops()
        assert not hasattr(torch.ops.restore, "csa_propagate")
        torch.manual_seed(0)
        f = torch.randn(2, 3, 5, 4)
        hole = torch.zeros(2, 5, 4, dtype=torch.bool)
        hole[:, 1:3, 1:3] = True
        index, score = ops.patch_best_match(f, f, ~hole)
        assert torch.equal(index, ops.patch_best_match_reference(f, f, ~hole)[0])
        out = ops.csa_propagate(f, hole, index, score)
        torch.testing.assert_close(out, ops.csa_propagate_reference(f, hole, index, score))
        sim = ops.patch_similarity(f, f, ~hole, ksize=3)
        assert sim.shape == (2, 20, 5, 4)
        g = torch.randn(2, 3, 5, 4, requires_grad=True)
        penalty = ops.masked_gradient_penalty(g, hole)
        penalty.backward()
        assert g.grad is not None
        print("fallback-ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "fallback-ok" in result.stdout


def test_cmake_builds_a_loadable_library(tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    build = tmp_path / "build"
    configure = [
        cmake,
        "-S",
        str(ROOT),
        "-B",
        str(build),
        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DRESTORE_CUDA=OFF",
        # One translation unit: the torch headers are parsed once (about 3x faster on 2 cores).
        "-DCMAKE_UNITY_BUILD=ON",
    ]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    result = subprocess.run(configure, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [cmake, "--build", str(build), "-j", "2"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    library = build / "librestore_ops.so"
    assert library.exists(), sorted(p.name for p in build.iterdir())
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(library)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded-and-matched" in result.stdout


def test_nvcc_compiles_every_cuda_source_for_sm80_and_sm90(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    assert len(CU_SOURCES) == 4, CU_SOURCES
    arches = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]
    commands = [
        [nvcc, "-c", *TORCH_NVCC_FLAGS, *arches, str(src), "-o", str(tmp_path / f"{src.stem}.o")]
        for src in CU_SOURCES
    ]
    results = _run_parallel(commands, CUDA_DIR)
    failures = {
        src.name: r.stderr for src, r in zip(CU_SOURCES, results, strict=True) if r.returncode != 0
    }
    assert not failures, failures
    for src in CU_SOURCES:
        assert (tmp_path / f"{src.stem}.o").stat().st_size > 0


def _cuda_include() -> Path | None:
    nvcc = shutil.which("nvcc")
    candidates = [Path(os.environ["CUDA_HOME"]) / "include"] if os.environ.get("CUDA_HOME") else []
    if nvcc:
        candidates.append(Path(nvcc).resolve().parents[1] / "include")
    candidates.append(Path("/usr/local/cuda/include"))
    return next((c for c in candidates if (c / "cuda_runtime_api.h").exists()), None)


def test_cuda_glue_compiles_against_torch_headers(tmp_path):
    # The glue needs a CUDA torch to link, but its C++ can be checked against the
    # torch headers (c10/cuda ships in every wheel) and the CUDA toolkit's headers.
    from torch.utils.cpp_extension import include_paths

    cxx = shutil.which("c++") or shutil.which("g++")
    cuda_include = _cuda_include()
    if cxx is None or cuda_include is None:
        pytest.skip("needs a C++ compiler and the CUDA toolkit headers (cuda_runtime_api.h)")
    if not (Path(include_paths()[0]) / "c10" / "cuda" / "CUDAGuard.h").exists():
        pytest.skip("this torch build ships no c10/cuda headers")
    flags = (
        [f"-I{p}" for p in include_paths()]
        + [
            f"-I{cuda_include}",
            "-std=c++20",
            "-fsyntax-only",
            "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE",  # the generated macros header ships with CUDA wheels only
        ]
    )
    assert len(GLUE_SOURCES) == 4, GLUE_SOURCES
    # One translation unit including the four files (errors still name the original file).
    unity = tmp_path / "glue_unity.cpp"
    unity.write_text("".join(f'#include "{src}"\n' for src in GLUE_SOURCES))
    result = subprocess.run([cxx, *flags, str(unity)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_use_reference_forces_the_references_in_its_block() -> None:
    import torch

    from restore.ops import _ext, use_reference

    x = torch.rand(1, 2, 3, 3)
    with use_reference():
        assert not _ext.use_kernel("patch_similarity", x)
        with use_reference(False):
            assert _ext.use_kernel("patch_similarity", x) == _ext.has_ops()
    assert _ext.use_kernel("patch_similarity", x) == _ext.has_ops()

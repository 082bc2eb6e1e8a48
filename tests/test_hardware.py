"""Where bf16 is used by default, and the environment override."""

from __future__ import annotations

import pytest

from restore.hardware import cpu_has_fast_bf16, prefers_bf16


def test_cpu_default_follows_the_bf16_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESTORE_BF16", raising=False)
    assert prefers_bf16("cpu") == cpu_has_fast_bf16()


@pytest.mark.parametrize("value, expected", [("0", False), ("off", False), ("1", True), ("on", True)])
def test_environment_forces_the_choice(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("RESTORE_BF16", value)
    assert prefers_bf16("cpu") is expected


def test_loaded_csa_follows_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from restore.models.csa.inpainter import load_csa_inpainter
    from restore.models.registry import METHODS

    monkeypatch.setenv("RESTORE_BF16", "0")
    assert load_csa_inpainter(METHODS["csa"].shipped_checkpoint).bf16 is False
    monkeypatch.setenv("RESTORE_BF16", "1")
    assert load_csa_inpainter(METHODS["csa"].shipped_checkpoint).bf16 is True


def test_freed_memory_is_kept_for_reuse_under_glibc() -> None:
    import platform
    import subprocess
    import sys

    code = (
        "import resource, torch\n"
        "from restore.hardware import retain_freed_memory\n"
        "x = torch.rand(4, 64, 256, 256)\n"  # 64 MiB products: over glibc's 32 MiB mmap ceiling
        "def faults():\n"
        "    (x * 2.0).sum()\n"  # warm-up: the heap grows once
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    for _ in range(20):\n"
        "        (x * 2.0).sum()\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "plain = faults()\n"
        "print(retain_freed_memory(), plain, faults())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    accepted, plain, kept = out.split()
    if platform.libc_ver()[0] != "glibc":
        assert accepted == "False"
        return
    assert accepted == "True"
    assert int(kept) * 4 < int(plain), out  # faulted in anew on every product before, reused after

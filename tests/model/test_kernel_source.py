"""The fused CPU kernel's C++ source is a package-data file and keys the compile cache."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

from delssome_norms.model import _kernel

CPP = Path(_kernel.__file__).resolve().parent / "kernels" / "pfic_cpu.cpp"


def test_source_is_the_packaged_cpp_file() -> None:
    src = _kernel.kernel_source()
    assert src == CPP.read_text(encoding="utf-8")
    assert "pfic_abi_version" in src  # the symbol _kernel checks after loading


def test_cache_key_changes_when_the_source_changes() -> None:
    src = _kernel.kernel_source()
    flags = ("-O2", "-shared")
    tag = _kernel.cache_tag(src, "c++", flags)
    assert len(tag) == 16 and tag == _kernel.cache_tag(src, "c++", flags)
    assert _kernel.cache_tag(src + "\n// edited\n", "c++", flags) != tag
    assert _kernel.cache_tag(src, "clang++", flags) != tag
    assert _kernel.cache_tag(src, "c++", ("-O3", "-shared")) != tag
    # the key is a prefix of a SHA-256 over the source text (an independent recomputation)
    machine = platform.machine() + platform.node() + _kernel.cpu_identity()
    raw = (src + "c++" + "-O2 -shared" + machine).encode()
    assert tag == hashlib.sha256(raw).hexdigest()[:16]


def test_cache_key_changes_with_the_cpu(monkeypatch) -> None:
    """-march=native libraries are per CPU: two CPUs behind one host name get two keys."""
    src = _kernel.kernel_source()
    flags = ("-O3", "-march=native")
    monkeypatch.setattr(_kernel, "cpu_identity", lambda: "model name : A\nflags : avx2")
    a = _kernel.cache_tag(src, "c++", flags)
    monkeypatch.setattr(_kernel, "cpu_identity", lambda: "model name : A\nflags : avx2 avx512f")
    assert _kernel.cache_tag(src, "c++", flags) != a


def test_cpu_identity_reads_this_machines_cpu() -> None:
    ident = _kernel.cpu_identity()
    assert ident == _kernel.cpu_identity()
    info = Path("/proc/cpuinfo")
    if info.exists():  # Linux: the first processor's model name and flags
        flags = next(ln for ln in info.read_text().splitlines() if ln.startswith(("flags", "Features")))
        assert flags.strip() in ident

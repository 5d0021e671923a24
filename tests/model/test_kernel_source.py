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
    raw = (src + "c++" + "-O2 -shared" + platform.machine() + platform.node()).encode()
    assert tag == hashlib.sha256(raw).hexdigest()[:16]

"""Measuring tools: wall time, peak memory (host RSS and device stats), digests, statistics."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def trim_heap() -> None:
    """Return freed heap pages to the OS (glibc), so an RSS baseline is not inflated."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


class PeakMemory:
    """Peak host-RSS growth (sampled every `interval` s) and device peak bytes inside a block."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.rss_delta = 0
        self.device_peak: int | None = None
        self._proc = psutil.Process()

    def __enter__(self) -> PeakMemory:
        trim_heap()
        self._base = self._proc.memory_info().rss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._dev_base = _device_bytes_in_use()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self._stop.set()
        self._thread.join()
        self.rss_delta = self._peak - self._base
        peak = _device_peak_bytes()
        if peak is not None and self._dev_base is not None:
            self.device_peak = peak - self._dev_base


def _device_stats() -> list[dict[str, Any]]:
    try:
        import jax

        stats = [d.memory_stats() for d in jax.local_devices()]
    except Exception:  # memory_stats is optional per backend
        return []
    return [s for s in stats if s]


def _device_bytes_in_use() -> int | None:
    stats = _device_stats()
    return sum(s.get("bytes_in_use", 0) for s in stats) if stats else None


def _device_peak_bytes() -> int | None:
    stats = _device_stats()
    return sum(s.get("peak_bytes_in_use", 0) for s in stats) if stats else None


def timed(thunk: Callable[[], Any], block: Callable[[Any], Any]) -> tuple[float, Any]:
    """Seconds for `thunk()` including `block(result)`, and the result."""
    t0 = time.perf_counter()
    out = thunk()
    block(out)
    return time.perf_counter() - t0, out


def digest(a: Any) -> str:
    """A blake2b digest of an array's bytes (dtype and shape included)."""
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def leaf_stats(a: Any, max_samples: int = 1 << 22) -> tuple[float, float, int]:
    """(mean, std, n) over at most `max_samples` evenly strided elements, in float64."""
    flat = np.asarray(a).reshape(-1)
    step = max(1, flat.size // max_samples)
    sample = flat[::step].astype(np.float64)
    return float(sample.mean()), float(sample.std()), int(sample.size)


def max_ulp_diff(a: Any, b: Any) -> int:
    """Largest distance in units of the last place between two same-dtype float arrays."""
    a, b = np.asarray(a), np.asarray(b)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    return int(np.abs(ia - ib).max()) if a.size else 0


def available_bytes() -> int:
    return psutil.virtual_memory().available


def machine() -> dict[str, Any]:
    """The machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(psutil.Process().cpu_affinity() or []),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    import jax
    import jaxlib

    info |= {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()][:16],
        "device_count": jax.device_count(),
        "numpy": np.__version__,
    }
    try:
        import flax

        info["flax"] = flax.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info

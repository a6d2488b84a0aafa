"""NVIDIA-GPU ``torch.randn`` on any hardware: Philox4x32-10 plus Box-Muller, vectorised with numpy.

torch's CUDA generator gives element ``i`` of call number ``offset`` from the Philox counter
``[offset, 0, i, 0]`` and key ``[seed low word, seed high word]``, and turns the first two 32-bit outputs
into one normal sample with Box-Muller (``sqrt(-2 ln u) * sin(2 pi v)``). Reproducing that lets
images made on NVIDIA cards ("RNG: NV" in A1111) be remade on CPUs and other GPUs.
"""

from __future__ import annotations

import numpy as np

_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))
# A1111 compatibility: its constants, 2^-32 and 2^-32 * 2pi rounded to float32, with the arithmetic then
# done in float64 (numpy promotes uint32 * float32) and the result rounded to float32.
_TWO_POW32_INV = np.array([2.3283064e-10], dtype=np.float32)
_TWO_POW32_INV_2PI = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def _mulhilo(a: np.ndarray, m: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    product = a.astype(np.uint64) * m
    return (product >> np.uint64(32)).astype(np.uint32), (product & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int = 10) -> np.ndarray:
    """Philox4x32 (Salmon et al. 2011) on a (4, n) uint32 counter with a (2, n) uint32 key."""
    c = counter.copy()
    k = key.copy()
    for round_index in range(rounds):
        hi0, lo0 = _mulhilo(c[0], _PHILOX_M[0])
        hi1, lo1 = _mulhilo(c[2], _PHILOX_M[1])
        c = np.stack([hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0])
        if round_index < rounds - 1:
            k = np.stack([k[0] + _PHILOX_W[0], k[1] + _PHILOX_W[1]])
    return c


def box_muller(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One standard normal per pair of uint32s, as curand's normal: radius from x, angle from y."""
    u = x * _TWO_POW32_INV + _TWO_POW32_INV / 2
    v = y * _TWO_POW32_INV_2PI + _TWO_POW32_INV_2PI / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


class PhiloxGenerator:
    """A seeded stream of NVIDIA-compatible normal samples; each ``randn`` call advances the offset by one."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.offset = 0

    def randn(self, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        counter = np.zeros((4, n), dtype=np.uint32)
        counter[0] = self.offset
        counter[2] = np.arange(n, dtype=np.uint32)
        self.offset += 1
        seed = np.uint64(self.seed % 2**64)
        key = np.stack(
            [
                np.full(n, seed & np.uint64(0xFFFFFFFF), dtype=np.uint32),
                np.full(n, seed >> np.uint64(32), dtype=np.uint32),
            ]
        )
        out = philox4x32(counter, key)
        return box_muller(out[0], out[1]).reshape(shape)

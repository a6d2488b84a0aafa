"""Seeded noise: A1111's per-image seeds, variation seeds, resize-from, ENSD, NV source, Brownian trees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kdiffusion_oracle import kdiffusion_sampling

from modules.sampling.brownian import BrownianNoiseSampler, sigma_range
from modules.sampling.rng import ImageNoiseSampler, ImageRNG, randn, slerp
from modules.sampling.rng_philox import PhiloxGenerator, philox4x32

SHAPE = (4, 8, 8)


def _cpu_reference(seed: int, shape=SHAPE) -> torch.Tensor:
    torch.manual_seed(seed)  # A1111's CPU source: global seed, then randn on CPU
    return torch.randn(shape)


def test_first_is_each_seeds_cpu_noise():
    rng = ImageRNG(SHAPE, [10, 11, 12])
    noise = rng.first()
    assert noise.shape == (3, *SHAPE)
    for i, seed in enumerate([10, 11, 12]):
        torch.testing.assert_close(noise[i], _cpu_reference(seed), rtol=0, atol=0)


def test_seed_is_independent_of_batch_position():
    alone = ImageRNG(SHAPE, [7]).first()[0]
    torch.testing.assert_close(ImageRNG(SHAPE, [3, 5, 7]).first()[2], alone, rtol=0, atol=0)
    rng = ImageRNG(SHAPE, [3, 7])
    rng.first()
    single = ImageRNG(SHAPE, [7])
    single.first()
    torch.testing.assert_close(rng.next()[1], single.next()[0], rtol=0, atol=0)


def test_deterministic_and_next_continues_the_generator():
    a, b = ImageRNG(SHAPE, [42]), ImageRNG(SHAPE, [42])
    torch.testing.assert_close(a.next(), b.first())  # first call of next() is first()
    torch.testing.assert_close(a.next(), b.next())
    g = torch.Generator().manual_seed(42)
    torch.randn(SHAPE, generator=g)
    fresh = ImageRNG(SHAPE, [42])
    fresh.next()
    torch.testing.assert_close(fresh.next()[0], torch.randn(SHAPE, generator=g), rtol=0, atol=0)


def test_ensd_changes_only_the_noise_after_first():
    plain, shifted = ImageRNG(SHAPE, [5, 6]), ImageRNG(SHAPE, [5, 6], eta_noise_seed_delta=31337)
    torch.testing.assert_close(shifted.first(), plain.first(), rtol=0, atol=0)
    later = shifted.next()
    assert not torch.allclose(later, plain.next())
    for i, seed in enumerate([5, 6]):
        expected = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed + 31337))
        torch.testing.assert_close(later[i], expected, rtol=0, atol=0)


@pytest.mark.parametrize("source", ["cpu", "nv"])
def test_variation_strength_zero_and_one(source):
    seed_only = ImageRNG(SHAPE, [1, 2], source=source).first()
    strength0 = ImageRNG(SHAPE, [1, 2], subseeds=[8, 9], subseed_strength=0.0, source=source).first()
    strength1 = ImageRNG(SHAPE, [1, 2], subseeds=[8, 9], subseed_strength=1.0, source=source).first()
    torch.testing.assert_close(strength0, seed_only)
    torch.testing.assert_close(strength1[0], randn(8, SHAPE, source), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(strength1[1], randn(9, SHAPE, source), atol=1e-5, rtol=1e-5)
    half = ImageRNG(SHAPE, [1, 2], subseeds=[8, 9], subseed_strength=0.5, source=source).first()
    assert not torch.allclose(half, seed_only) and not torch.allclose(half, strength1)


def test_missing_subseeds_default_to_zero():
    noise = ImageRNG(SHAPE, [1, 2], subseeds=[8], subseed_strength=1.0).first()
    torch.testing.assert_close(noise[1], _cpu_reference(0), atol=1e-5, rtol=1e-5)


def test_slerp_is_per_column_and_falls_back_with_swapped_weights():
    low, high = torch.randn(SHAPE), torch.randn(SHAPE)
    mid = slerp(0.3, low, high)
    # Per (channel, column): the result keeps the interpolated angle, norms along dim 1.
    low_n, high_n = low / low.norm(dim=1, keepdim=True), high / high.norm(dim=1, keepdim=True)
    omega = torch.acos((low_n * high_n).sum(1))
    expected = (torch.sin(0.7 * omega) / torch.sin(omega)).unsqueeze(1) * low
    expected += (torch.sin(0.3 * omega) / torch.sin(omega)).unsqueeze(1) * high
    torch.testing.assert_close(mid, expected)
    torch.testing.assert_close(slerp(0.3, low, low * 1.0001), low * 0.3 + low * 1.0001 * 0.7)


def test_resize_seed_pastes_old_size_noise_centred():
    rng = ImageRNG((4, 8, 12), [77], seed_resize_from_h=64, seed_resize_from_w=64)
    noise = rng.first()[0]
    old = _cpu_reference(77, (4, 8, 8))
    torch.testing.assert_close(noise[:, :, 2:10], old, rtol=0, atol=0)
    canvas = torch.randn((4, 8, 12), generator=torch.Generator().manual_seed(77))
    torch.testing.assert_close(noise[:, :, :2], canvas[:, :, :2], rtol=0, atol=0)
    smaller = ImageRNG((4, 4, 4), [77], seed_resize_from_h=64, seed_resize_from_w=64).first()[0]
    torch.testing.assert_close(smaller, old[:, 2:6, 2:6], rtol=0, atol=0)


def test_noise_sampler_adapter_draws_next():
    rng, reference = ImageRNG(SHAPE, [4]), ImageRNG(SHAPE, [4])
    rng.first(), reference.first()
    sampler = ImageNoiseSampler(rng)
    torch.testing.assert_close(sampler(torch.tensor(2.0), torch.tensor(1.0)), reference.next())


def test_rejects_unknown_source():
    with pytest.raises(ValueError, match="cpu, gpu, nv"):
        ImageRNG(SHAPE, [1], source="tpu")


def test_philox_known_answer():
    # Random123's published known-answer vectors for Philox4x32-10 (all-zero and all-ones inputs).
    zero = philox4x32(np.zeros((4, 1), dtype=np.uint32), np.zeros((2, 1), dtype=np.uint32))
    assert zero[:, 0].tolist() == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = philox4x32(
        np.full((4, 1), 0xFFFFFFFF, dtype=np.uint32), np.full((2, 1), 0xFFFFFFFF, dtype=np.uint32)
    )
    assert ones[:, 0].tolist() == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]


def test_nv_generator_properties():
    a, b = PhiloxGenerator(123), PhiloxGenerator(123)
    first = a.randn((4, 64, 64))
    assert first.dtype == np.float32 and first.shape == (4, 64, 64)
    np.testing.assert_array_equal(first, b.randn((4, 64, 64)))
    assert a.offset == 1
    second = a.randn((4, 64, 64))
    assert not np.allclose(first, second)  # the offset advanced
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1) < 0.02
    assert not np.allclose(first, PhiloxGenerator(124).randn((4, 64, 64)))
    # Element i depends on i only, so a longer draw starts with the shorter one.
    np.testing.assert_array_equal(PhiloxGenerator(5).randn((10,)), PhiloxGenerator(5).randn((20,))[:10])


def test_nv_source_in_image_rng():
    rng = ImageRNG(SHAPE, [9, 10], source="nv")
    noise = rng.first()
    torch.testing.assert_close(noise[1], torch.from_numpy(PhiloxGenerator(10).randn(SHAPE)))
    generator = PhiloxGenerator(9)
    generator.randn(SHAPE)
    torch.testing.assert_close(rng.next()[0], torch.from_numpy(generator.randn(SHAPE)))


def test_brownian_matches_kdiffusion_and_is_per_seed():
    x = torch.zeros(3, *SHAPE)
    sigma_list = torch.tensor([14.6, 5.0, 1.0, 0.1, 0.0])
    lo, hi = sigma_range(sigma_list)
    ours = BrownianNoiseSampler(x, lo, hi, seeds=[1, 2, 3])
    reference = kdiffusion_sampling().BrownianTreeNoiseSampler(x, lo, hi, seed=[1, 2, 3])
    for s, s_next in zip(sigma_list[:-2], sigma_list[1:-1], strict=True):
        torch.testing.assert_close(ours(s, s_next), reference(s, s_next), rtol=0, atol=0)
    alone = BrownianNoiseSampler(x[:1], lo, hi, seeds=[2])
    torch.testing.assert_close(alone(sigma_list[0], sigma_list[1])[0], ours(sigma_list[0], sigma_list[1])[1])
    assert not torch.allclose(ours(sigma_list[0], sigma_list[1])[0], ours(sigma_list[0], sigma_list[1])[1])
    with pytest.raises(ValueError, match="one seed per image"):
        BrownianNoiseSampler(x, lo, hi, seeds=[1])

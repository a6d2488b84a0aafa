"""Restart sampling: Heun steps plus A1111's automatic restart segment."""

from __future__ import annotations

import torch
from sampling_helpers import SeededNoise

from modules.sampling import samplers, sigmas


def test_short_runs_are_plain_heun(schedule64, denoiser, start_noise):
    sigma_list = sigmas.karras(12, schedule64.sigma_min, schedule64.sigma_max).double()
    x = start_noise * sigma_list[0]
    noise = SeededNoise(0)
    out = samplers.sample_restart(denoiser, x.clone(), sigma_list, noise_sampler=noise)
    torch.testing.assert_close(out, samplers.sample_heun(denoiser, x.clone(), sigma_list))
    assert noise.calls == 0


def test_twenty_steps_plan_one_restart_segment():
    given = sigmas.exponential(20, 0.03, 14.6)
    main, plan = samplers.restart_plan(given)
    # A1111: 20 - 9 Karras main steps over the given range, then 9 restart steps from ~0.1 up to ~2, once.
    torch.testing.assert_close(main, sigmas.karras(11, 0.03, 14.6))
    assert len(plan) == 11 + 9
    at = int(torch.argmin(abs(main - 0.1)))
    top = int(torch.argmin(abs(main - 2.0)))
    segment = sigmas.karras(10, main[at].item(), main[top].item())[:-1]
    assert plan[at - 1] == (main[at - 1], main[at]) and plan[at] == (segment[0], segment[1])
    assert segment[0] == main[top] and segment[-1] == main[at]
    assert plan[at + 9] == (main[at], main[at + 1])  # back on the main schedule after the restart


def test_thirty_six_steps_restart_twice():
    _, plan = samplers.restart_plan(sigmas.karras(36, 0.03, 14.6))
    jumps = [i for i in range(1, len(plan)) if plan[i][0] > plan[i - 1][1]]
    assert len(jumps) == 2


def test_restart_renoises_with_the_noise_sampler(schedule64, denoiser, start_noise):
    sigma_list = sigmas.karras(20, schedule64.sigma_min, schedule64.sigma_max).double()
    noise = SeededNoise(0)
    out = samplers.sample_restart(denoiser, start_noise * sigma_list[0], sigma_list, noise_sampler=noise)
    assert noise.calls == 1 and torch.isfinite(out).all()

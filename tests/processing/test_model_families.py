"""txt2img through every model family the loader supports: SD2 v-prediction and SDXL (pooled text and
size/crop ids reach the UNet)."""

from __future__ import annotations

import numpy as np

from modules.models.tiny import build_tiny_sd2_bundle, build_tiny_sdxl_bundle
from modules.processing.job import GenerationJob


def job(**kw) -> GenerationJob:
    return GenerationJob(
        **{
            **dict(
                prompt="a red circle",
                negative_prompt="",
                steps=3,
                width=64,
                height=48,
                seed=11,
                sampler_name="Euler",
                do_not_save_samples=True,
            ),
            **kw,
        }
    )


def test_sd2_v_prediction(runtime):
    bundle = build_tiny_sd2_bundle(prediction_type="v_prediction")
    runtime.model_loader = lambda: bundle
    result = runtime.txt2img(job())
    assert result.images[0].size == (64, 48)
    assert np.asarray(result.images[0]).std() > 0


def test_sdxl_gets_pooled_text_and_size_ids(runtime):
    bundle = build_tiny_sdxl_bundle()
    runtime.model_loader = lambda: bundle
    seen = []
    original = bundle.unet.forward

    def spy(sample, timestep, encoder_hidden_states=None, added_cond_kwargs=None, **kw):
        seen.append((encoder_hidden_states.shape, added_cond_kwargs))
        return original(
            sample,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            added_cond_kwargs=added_cond_kwargs,
            **kw,
        )

    bundle.unet.forward = spy
    result = runtime.txt2img(job(batch_size=2))
    assert len(result.samples) == 2
    states, added = seen[0]
    assert states[0] == 4  # 2 images x (prompt + negative), one UNet call
    assert added["text_embeds"].shape[0] == 4
    assert added["time_ids"].tolist()[0] == [48.0, 64.0, 0.0, 0.0, 48.0, 64.0]  # (h, w, crop, target)
    # an empty SDXL negative prompt is all zeros, as A1111's SDXL conditioner makes it
    assert added["text_embeds"][2:].abs().sum() == 0

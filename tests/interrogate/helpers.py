"""Tiny random BLIP and CLIP folders, saved (and later loaded) through transformers like downloaded models."""

from __future__ import annotations

from pathlib import Path

import torch

from modules.paths import CLIP_L_TOKENIZER

BLIP_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "picture", "of", "red", "circle", "[DEC]"]


def write_tiny_clip(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(seed)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor, CLIPTokenizer.from_pretrained(CLIP_L_TOKENIZER)).save_pretrained(folder)
    return folder


def write_tiny_blip(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessorPil,
        BlipProcessor,
    )

    torch.manual_seed(seed)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = BlipConfig(
        text_config={
            **tower,
            "vocab_size": len(BLIP_WORDS),
            "encoder_hidden_size": 32,
            "bos_token_id": BLIP_WORDS.index("[DEC]"),
            "pad_token_id": 0,
            "sep_token_id": 3,
            "eos_token_id": 3,
            "max_position_embeddings": 64,
        },
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    BlipForConditionalGeneration(config).save_pretrained(folder)
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(BLIP_WORDS)}, bos_token="[DEC]")
    BlipProcessor(BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer).save_pretrained(folder)
    return folder

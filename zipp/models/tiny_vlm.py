"""A tiny Qwen2-VL for tests (random weights: its outputs are NOT meaningful).

``build_tiny_vlm(folder)`` saves, in one folder, everything the REAL loading code reads for a
Qwen2-VL-class model: ``AutoProcessor.from_pretrained(folder)`` (a ``Qwen2VLProcessor`` = the
locally trained byte-level BPE of :mod:`zipp.models.tiny_llm` + Qwen2-VL's vision special tokens, a
ChatML template that renders image parts as ``<|vision_start|><|image_pad|><|vision_end|>``, and a
``Qwen2VLImageProcessor`` with small ``min_pixels``/``max_pixels``) and
``AutoModelForImageTextToText.from_pretrained(folder)`` (a ``Qwen2VLForConditionalGeneration``
from ``Qwen2VLConfig``: 2-layer text model with head_dim 64, 1-block vision tower). No hub access.

What makes it Qwen2-VL for token accounting: an image of (h, w) pixels is resized by
``smart_resize`` to multiples of patch_size * merge_size (28) within [min_pixels, max_pixels], cut
into 14x14 patches (``image_grid_thw`` = (1, h'/14, w'/14)) and merged 2x2, so the single
``<|image_pad|>`` of the template becomes ``prod(image_grid_thw) // merge_size**2`` tokens: the
cost depends on the image's size. With the limits below an image costs 4..64 tokens (+2 for
``<|vision_start|>``/``<|vision_end|>``).
"""

from __future__ import annotations

from pathlib import Path

TINY_QWEN2_VL = "tiny-qwen2-vl"

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")

# ChatML as in tiny_llm (string contents render byte-identically), plus list contents: text parts
# verbatim, image parts (OpenAI "image_url", HF "image") as Qwen2-VL's placeholder triple.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or part['type'] == 'image_url' or 'image' in part or 'image_url' in part %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

PATCH, MERGE, TEMPORAL = 14, 2, 2
MIN_PIXELS = (PATCH * MERGE) ** 2 * 4  # >= 4 image tokens (a 56x56 grid)
MAX_PIXELS = (PATCH * MERGE) ** 2 * 64  # <= 64 image tokens

TEXT_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
                  num_key_value_heads=1, max_position_embeddings=16384)  # head_dim 64 (vLLM CPU attention)
VISION_SHAPE = dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2, in_channels=3, patch_size=PATCH,
                    spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL)


def qwen2_vl_config(tokenizer):
    from transformers import Qwen2VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    text = dict(
        vocab_size=len(tokenizer), **TEXT_SHAPE,
        # M-RoPE: (temporal, height, width) sections of head_dim / 2 = 32 rotary frequencies
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|pad|>"),
    )
    return Qwen2VLConfig(
        text_config=text, vision_config=dict(hidden_size=TEXT_SHAPE["hidden_size"], **VISION_SHAPE),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True, dtype="float32",
    )


def make_processor(tokenizer):
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl import (
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    kw = dict(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=PATCH, merge_size=MERGE, temporal_patch_size=TEMPORAL)
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**kw), tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**kw), chat_template=CHAT_TEMPLATE,
    )


def build_tiny_vlm(folder: str | Path, seed: int = 0, vocab_size: int = 4096) -> Path:
    """Build (once, atomically) the tiny random-weight Qwen2-VL + processor in ``folder``."""
    folder = Path(folder)
    if (folder / "config.json").is_file() and (folder / "processor_config.json").is_file():
        return folder
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from zipp.models.tiny_llm import build_atomically, train_tokenizer

    def write(tmp: Path) -> None:
        tokenizer = train_tokenizer(vocab_size=vocab_size, seed=seed, extra_special_tokens=VISION_TOKENS,
                                    chat_template=CHAT_TEMPLATE)
        make_processor(tokenizer).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)  # tokenizer_config.json keeps the chat template for AutoTokenizer users
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(qwen2_vl_config(tokenizer))
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.save_pretrained(tmp, safe_serialization=True)

    return build_atomically(folder, write, "Random-weight tiny Qwen2-VL built by zipp.models.tiny_vlm")

"""A tiny causal LM for tests and the offline demo (random weights: its outputs are NOT meaningful).

``build_tiny_llm(folder)`` trains a byte-level BPE on text generated here (no download), wraps it in a
``PreTrainedTokenizerFast`` with a ChatML Jinja chat template, and saves a random-weight
``LlamaForCausalLM`` built from ``LlamaConfig`` next to it, so the REAL loading code
(``AutoTokenizer.from_pretrained(path)``, ``AutoModelForCausalLM.from_pretrained(path)``, and vLLM)
is what runs, exactly as with a hub model. The same builder, with other sizes, makes the
Llama-3.1-8B-shaped tokenizer for the GPU benchmark (``bench/gpu_personas.py``).

Model specs in config: ``local:tiny-llama`` resolves to ``<paths.cache>/models/tiny-llama`` (built on
first use); anything else is a hub id or a folder, passed to ``from_pretrained`` unchanged.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

LOCAL_PREFIX = "local:"
TINY_LLAMA = "tiny-llama"

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# ChatML; `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Tiny Llama: head_dim 64 (vLLM's CPU and GPU attention kernels both take it), 2 layers.
TINY_LLAMA_SHAPE = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
    num_key_value_heads=1, head_dim=64, max_position_embeddings=16384,
)

_WORDS = (
    "the a an and or but if then because so very really just also still never always often "
    "i me my mine we our you your he she they them their it this that these those here there "
    "is am are was were be been being have has had do does did will would can could should may might "
    "live living moved from in at on to for with about near around city town country home work job "
    "love like enjoy hate prefer favorite favourite hobby weekend morning night summer winter "
    "photo photos photography camera film analog lens light color colour colors sunset landscape "
    "game games gaming console pc build keyboard music guitar band song album concert vinyl "
    "cook cooking recipe bread coffee tea beer wine food garden plants hiking running cycling "
    "travel trip flight beach mountain lake river forest snow rain sun sky street art design "
    "painting drawing sketch watercolor anime movie movies film show book books reading writing "
    "science space physics math code coding programming python software engineer developer "
    "nurse doctor teacher student lawyer chef artist designer mechanic electrician accountant "
    "old years year age birthday kid kids son daughter wife husband partner dog cat pet "
    "happy sad angry calm excited curious funny serious kind honest weird cool great good bad "
    "think know feel want need try make made get got see saw look looks looking go went going "
    "persona interests visual aesthetics affective traits demographics age band gender location "
    "profession value confidence unknown evidence community snippet score comment title "
    "json object reply only user reddit subreddit posts comments image images"
).split()
_PLACES = (
    "london paris berlin tokyo toronto vancouver sydney melbourne seattle chicago boston austin "
    "denver portland dublin amsterdam madrid rome stockholm oslo helsinki copenhagen vienna "
    "canada australia germany france japan ireland sweden norway spain italy mexico brazil india "
    "texas california florida ohio michigan scotland england wales"
).split()


def _corpus(n_lines: int, seed: int) -> list[str]:
    """Deterministic English-like text (Reddit-style sentences + persona JSON) to train the BPE on."""
    rng = random.Random(seed)
    words, places = _WORDS, _PLACES
    lines = []
    for i in range(n_lines):
        kind = i % 5
        if kind == 0:
            lines.append(f"I live in {rng.choice(places).title()} and I'm {rng.randint(16, 70)} years old.")
        elif kind == 1:
            lines.append(json.dumps({
                "demographics": {"age_band": {"value": rng.choice(["18-24", "25-34", "unknown"]), "confidence": round(rng.random(), 2)}},
                "interests": rng.sample(words, 3), "persona_text": " ".join(rng.choices(words, k=8)),
            }))
        elif kind == 2:
            trunc = rng.choice(["", ' truncated="true"'])
            kind_attr = rng.choice(["comment", "title"])
            body = " ".join(rng.choices(words, k=6))
            lines.append(
                f'<community name="r/{rng.choice(words)}" rank="{rng.randint(1, 20)}" share="0.{rng.randint(0, 999):03d}" '
                f'comments="{rng.randint(0, 99)}" posts="{rng.randint(0, 9)}" image_posts="{rng.randint(0, 9)}" '
                f'score="{rng.randint(0, 999)}" active_months="{rng.randint(1, 12)}">'
            )
            lines.append(
                f'<snippet id="t1_{rng.getrandbits(28):x}" kind="{kind_attr}" score="{rng.randint(-5, 500)}"{trunc}>{body} [truncated]</snippet>'
            )
            lines.append("</community>")
        else:
            n = rng.randint(5, 25)
            s = " ".join(rng.choices(words, k=n))
            lines.append(s[:1].upper() + s[1:] + rng.choice([".", "!", "?", "..."]))
    return lines


def train_tokenizer(vocab_size: int = 4096, n_lines: int = 20000, seed: int = 0, pad_to: int | None = None,
                    extra_special_tokens: tuple[str, ...] = (), chat_template: str = CHAT_TEMPLATE):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with the chat template above.

    ``extra_special_tokens`` (e.g. Qwen2-VL's ``<|vision_start|>``, ``<|image_pad|>``) are added as
    atomic special tokens after the trained ones; ``chat_template`` replaces the ChatML text template.

    ``pad_to`` grows the vocabulary to exactly that size with filler tokens that no merge produces
    (decodable, never produced by encoding), so a tokenizer trained on little text can match a real
    model's embedding table (e.g. 128,256 for Llama 3) without training on a large corpus.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(_corpus(n_lines, seed), trainer=trainer)
    if pad_to is not None and tok.get_vocab_size() < pad_to:
        tok = _pad_vocab(tok, pad_to)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", unk_token=None,
        pad_token="<|pad|>", additional_special_tokens=["<|im_start|>", "<|endoftext|>", *extra_special_tokens],
    )
    fast.chat_template = chat_template
    fast.model_max_length = TINY_LLAMA_SHAPE["max_position_embeddings"]
    return fast


def _pad_vocab(tok, size: int):
    """Rebuild the BPE with extra vocabulary entries (ids after the trained ones) until ``size``."""
    from tokenizers import Tokenizer, pre_tokenizers

    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    specials = {a["content"]: a["id"] for a in data.get("added_tokens", [])}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    next_id = max(list(vocab.values()) + list(specials.values())) + 1
    i = 0
    while next_id < size:
        # two-to-four alphabet characters, skipping any string already in the vocabulary
        a = alphabet[i % len(alphabet)]
        b = alphabet[(i // len(alphabet)) % len(alphabet)]
        c = alphabet[(i // len(alphabet) ** 2) % len(alphabet)]
        cand = "\u0120" + a + b + c
        i += 1
        if cand not in vocab:
            vocab[cand] = next_id
            next_id += 1
    data["model"]["vocab"] = vocab
    return Tokenizer.from_str(json.dumps(data))


def llama_config(vocab_size: int, tokenizer, **shape):
    from transformers import LlamaConfig

    spec = {**TINY_LLAMA_SHAPE, **shape}
    return LlamaConfig(
        vocab_size=vocab_size,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|pad|>"),
        tie_word_embeddings=True, dtype="float32", **{"rope_theta": 10000.0, **spec},
    )


def build_tiny_llm(folder: str | Path, seed: int = 0, vocab_size: int = 4096) -> Path:
    """Build (once) the tiny random-weight Llama + tokenizer in ``folder``; return the folder.

    Atomic: built in a temporary sibling and renamed, so concurrent workers never see half a model.
    """
    folder = Path(folder)
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    import torch
    from transformers import LlamaForCausalLM

    def write(tmp: Path) -> None:
        tokenizer = train_tokenizer(vocab_size=vocab_size, seed=seed)
        tokenizer.save_pretrained(tmp)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llama_config(len(tokenizer), tokenizer))
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)

    return build_atomically(folder, write, "Random-weight tiny Llama built by zipp.models.tiny_llm")


def build_atomically(folder: Path, write, what: str) -> Path:
    """Run ``write(tmp)`` into a temporary sibling folder, label it as not meaningful, and rename it to
    ``folder``: concurrent workers building the same model never see a half-written one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        (tmp / "ZIPP_TINY_MODEL.txt").write_text(f"{what} for tests: outputs are NOT meaningful.\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another worker won the race: keep theirs
            if not (folder / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_model(spec: str, cache: str | Path) -> str:
    """``local:tiny-llama`` / ``local:tiny-qwen2-vl`` -> built folder under ``<cache>/models``;
    anything else unchanged."""
    from zipp.models.tiny_vlm import TINY_QWEN2_VL, build_tiny_vlm

    if not spec.startswith(LOCAL_PREFIX):
        return spec
    name = spec[len(LOCAL_PREFIX):]
    builders = {TINY_LLAMA: build_tiny_llm, TINY_QWEN2_VL: build_tiny_vlm}
    if name not in builders:
        raise ValueError(f"unknown local model {spec!r}: only {', '.join(LOCAL_PREFIX + n for n in builders)} are built locally")
    return str(builders[name](Path(cache) / "models" / name))

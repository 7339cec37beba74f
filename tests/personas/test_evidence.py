"""Evidence: attention ranking, token budget by the real tokenizer, marked truncation, accounting."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from zipp import tables
from zipp.lake import read_arrow
from zipp.personas.evidence import EvidenceError, EvidenceSource, Packer, resolve_plan
from zipp.personas.prompt import build_messages


def _setup(planted_lake, pcfg, counter, *overrides):
    lake, truth = planted_lake
    cfg = pcfg(f"paths.lake={lake}", *overrides)
    plan = resolve_plan(lake, cfg.personas)
    src = EvidenceSource(lake, cfg.personas, plan)
    keys = truth.column("user_key").to_pylist()
    return cfg, src.load(keys), Packer(counter, cfg.personas), keys


def frame(block):
    return build_messages(block)


@pytest.mark.parametrize("budget", [1000, 1200, 2000, 4096])
def test_no_prompt_exceeds_the_budget_by_the_real_tokenizer(planted_lake, pcfg, counter, budget):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, f"personas.token_budget={budget}")
    for k in keys:
        ev = packer.pack(inputs[k], frame)
        n = len(counter.tok(counter.tok.apply_chat_template(ev.messages, tokenize=False, add_generation_prompt=True),
                            add_special_tokens=False)["input_ids"])
        assert n == ev.prompt_tokens <= budget
        assert ev.evidence_tokens == counter.count(ev.block)
        acc = ev.accounting()
        assert acc[0]["kind"] == "subreddit" and all(a["tokens"] > 0 for a in acc)
        # accounting is per source and adds up to the block (give or take merges at item edges)
        assert abs(sum(a["tokens"] for a in acc) - ev.evidence_tokens) <= 0.1 * ev.evidence_tokens + 8


def test_communities_follow_the_default_layers_mean_attention(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter)
    lake = planted_lake[0]
    att = read_arrow(lake, tables.GOLD_ATTENTION)
    for k in keys[:10]:
        rows = att.filter(pc.and_(pc.and_(pc.equal(att["user_key"], k), pc.equal(att["layer"], "conv1")), pc.equal(att["head"], -1)))
        want = [r["subreddit"] for r in sorted(rows.to_pylist(), key=lambda r: (-r["attention"], r["subreddit"]))]
        got = [c.subreddit for c in inputs[k].communities]
        assert got == want[: cfg.personas.max_subreddits]
        assert inputs[k].ranking == "attention"
        assert abs(sum(c.share for c in inputs[k].communities) - 1) < 1e-6


def test_tight_budget_cuts_a_snippet_at_a_token_boundary_and_marks_it(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.token_budget=2000", "personas.min_snippet_tokens=4")
    cut = 0
    for k in keys:
        ev = packer.pack(inputs[k], frame)
        for item in ev.items:
            if item.truncated:
                cut += 1
                assert 'truncated="true"' in item.text and item.body.endswith("[truncated]")
                original = next(s.text for c in inputs[k].communities for s in c.snippets if s.snippet_id == item.ref)
                kept = item.body[: -len(" [truncated]")]
                assert original.replace('"', "&quot;").startswith(kept)  # a prefix of the escaped text
                assert counter.count(item.text) == item.tokens
        assert sum(1 for a in ev.accounting() if a["truncated"]) <= 1  # only the last snippet is ever cut
    assert cut > 0


def test_budget_is_shared_by_attention(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.token_budget=1300")
    top_more = 0
    for k in keys:
        ev = packer.pack(inputs[k], frame)
        comms = inputs[k].communities
        per = {c.subreddit: 0 for c in comms}
        for a in ev.accounting():
            if a["kind"] == "snippet":
                per[a["subreddit"]] += a["tokens"]
        top_more += per[comms[0].subreddit] >= per[comms[-1].subreddit]
    assert top_more == len(keys)


def test_packing_is_deterministic(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.token_budget=1200")
    a = [packer.pack(inputs[k], frame) for k in keys]
    cfg2, inputs2, packer2, _ = _setup(planted_lake, pcfg, counter, "personas.token_budget=1200")
    b = [packer2.pack(inputs2[k], frame) for k in keys]
    assert [(e.block, e.accounting()) for e in a] == [(e.block, e.accounting()) for e in b]


def test_tfidf_baseline_and_fallback(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.ranking=tfidf")
    defaults = {"askreddit", "pics", "funny", "todayilearned", "worldnews", "videos", "mildlyinteresting", "gifs"}
    for k in keys:
        assert inputs[k].ranking == "tfidf"
        assert inputs[k].communities[0].subreddit not in defaults  # common subreddits weigh less
    # a user the graph has no attention for falls back to tf-idf
    cfg, _, _, _ = _setup(planted_lake, pcfg, counter)
    from zipp.lake import write_arrow

    lake = planted_lake[0]
    att = read_arrow(lake, tables.GOLD_ATTENTION)
    write_arrow(lake, tables.GOLD_ATTENTION, att.filter(pc.not_equal(att["user_key"], keys[0])), schema=tables.GOLD_ATTENTION_SCHEMA)
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
    got = src.load(keys[:2])
    assert got[keys[0]].ranking == "tfidf_fallback" and got[keys[0]].communities
    assert got[keys[1]].ranking == "attention"


def test_multimodal_images_count_against_the_budget(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.multimodal=true", "personas.image_tokens=64",
                                       "personas.max_images=3", "personas.token_budget=1800")
    with_images = 0
    for k in keys:
        ev = packer.pack(inputs[k], frame)
        imgs = [a for a in ev.accounting() if a["kind"] == "image"]
        assert len(imgs) == len(ev.images) <= 3
        assert all(a["tokens"] > 64 for a in imgs)
        assert sum(a["tokens"] for a in imgs) <= 0.25 * (1800 - 765)
        assert ev.prompt_tokens == counter.count_prompt(ev.messages) + 64 * len(imgs) <= 1800
        with_images += bool(imgs)
        assert ev.block.count("<image ") == len(imgs)
    assert with_images > 0


def test_budget_smaller_than_instructions_fails_clearly(planted_lake, pcfg, counter):
    cfg, inputs, packer, keys = _setup(planted_lake, pcfg, counter, "personas.token_budget=700")
    with pytest.raises(EvidenceError, match="leaves no room|cannot hold"):
        packer.pack(inputs[keys[0]], frame)


def test_attention_run_resolution(planted_lake, pcfg):
    from zipp.lake import write_arrow

    lake, _ = planted_lake
    cfg = pcfg(f"paths.lake={lake}")
    assert resolve_plan(lake, cfg.personas).attention_run == "fixture"  # the only run
    assert resolve_plan(lake, cfg.personas).attention_layer == "conv1"  # the first layer
    assert resolve_plan(lake, pcfg(f"paths.lake={lake}", "personas.attention_layer=conv2").personas).attention_layer == "conv2"
    att = read_arrow(lake, tables.GOLD_ATTENTION)
    other = att.set_column(att.schema.get_field_index("run"), "run", pa.array(["other"] * att.num_rows, pa.string()))
    write_arrow(lake, tables.GOLD_ATTENTION, other, mode="append", schema=tables.GOLD_ATTENTION_SCHEMA)
    with pytest.raises(EvidenceError, match="set personas.attention_run"):
        resolve_plan(lake, cfg.personas)
    assert resolve_plan(lake, cfg.personas, current_run="other").attention_run == "other"
    assert resolve_plan(lake, pcfg(f"paths.lake={lake}", "personas.attention_run=fixture").personas, current_run="other").attention_run == "fixture"
    with pytest.raises(EvidenceError, match="not in"):
        resolve_plan(lake, pcfg(f"paths.lake={lake}", "personas.attention_layer=conv9").personas, current_run="other")


# ----------------------------------------------------------------------------- image cost by the model's processor


def _png(path, w, h):
    from PIL import Image

    Image.new("RGB", (w, h), (90, 140, 30)).save(path)
    return str(path)


def test_image_cost_comes_from_the_models_processor(vlm_dir, counter, tmp_path):
    """Qwen2-VL counts an image as prod(image_grid_thw) // merge_size**2 after its resize (+ the
    template's <|vision_start|>/<|vision_end|>): two sizes, two costs, each equal to what the
    processor itself expands the image into; a model without a processor costs image_tokens."""
    from transformers import AutoProcessor

    from zipp.personas.tokens import ImageCoster

    small, large = _png(tmp_path / "s.png", 64, 64), _png(tmp_path / "l.png", 640, 480)
    coster = ImageCoster(vlm_dir, fallback=999)
    assert coster.source == "processor" and coster.wrapper_tokens == 2
    proc = AutoProcessor.from_pretrained(vlm_dir)
    costs = {}
    for f in (small, large):
        from PIL import Image

        msgs = [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}]
        text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        enc = proc(text=[text], images=[Image.open(f).convert("RGB")], return_tensors="pt")
        grid = enc["image_grid_thw"][0].tolist()
        pads = int((enc["input_ids"] == proc.image_token_id).sum())
        assert pads == grid[0] * grid[1] * grid[2] // proc.image_processor.merge_size ** 2
        costs[f] = coster.cost(f)
        assert costs[f] == pads + 2
    assert costs[small] == 4 + 2 and costs[large] == 54 + 2  # 64x64 -> 56x56 (4 tokens); 640x480 capped by max_pixels
    assert coster.cost(None) is None and coster.cost(tmp_path / "missing.png") is None  # cannot size it
    assert ImageCoster(vlm_dir, 999).cost(small) == costs[small]  # deterministic
    text_only = ImageCoster(counter.path, fallback=77)  # tiny Llama: no image processor
    assert text_only.source == "config" and text_only.cost(small) == 77 and text_only.cost(None) == 77


def test_multimodal_packing_counts_images_as_the_model_does(mm_lake, pcfg, vlm_dir):
    """Packed prompt + per-image processor costs never exceed the budget, and equal the length of
    what the Qwen2-VL processor builds from the same messages and image files."""
    from PIL import Image
    from transformers import AutoProcessor

    from zipp.personas.tokens import ImageCoster, TokenCounter

    lake, truth = mm_lake
    budget = 1300
    cfg = pcfg(f"paths.lake={lake}", "personas.multimodal=true", "personas.max_images=4", f"personas.model={vlm_dir}",
               f"personas.token_budget={budget}", "personas.image_budget_share=0.3", "personas.image_tokens=999")
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas), image_cache=cfg.paths.cache)
    keys = truth.column("user_key").to_pylist()
    inputs = src.load(keys)
    counter, coster = TokenCounter(vlm_dir), ImageCoster(vlm_dir, cfg.personas.image_tokens)
    packer = Packer(counter, cfg.personas, coster)
    proc = AutoProcessor.from_pretrained(vlm_dir)
    seen_costs, checked = set(), 0
    for k in keys:
        ev = packer.pack(inputs[k], frame)
        imgs = [i for i in ev.items if i.kind == "image"]
        assert len(imgs) == len(ev.images) == len(ev.image_files) <= 4
        for it, f in zip(imgs, ev.image_files):
            assert f and it.media_tokens == coster.cost(f) < 999
            assert it.tokens == counter.count(it.text) + it.media_tokens  # recorded with its cost
            seen_costs.add(it.media_tokens)
        assert sum(i.tokens for i in imgs) <= int(0.3 * (budget - counter.count_prompt(frame("<evidence>\n</evidence>")) - 2))
        assert ev.prompt_tokens == counter.count_prompt(ev.messages) + sum(ev.image_tokens) <= budget
        if imgs and checked < 6:  # the model's own count of the same request
            msgs = [dict(m) for m in ev.messages]
            msgs[1] = {"role": "user", "content": [{"type": "text", "text": msgs[1]["content"]}] + [{"type": "image"}] * len(imgs)}
            text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            enc = proc(text=[text], images=[Image.open(f).convert("RGB") for f in ev.image_files], return_tensors="pt")
            assert enc["input_ids"].shape[1] == ev.prompt_tokens
            checked += 1
    assert checked >= 3 and len(seen_costs) >= 2  # images of several sizes got different costs

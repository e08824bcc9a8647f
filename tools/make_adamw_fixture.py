"""Writes tests/fixtures/adamw_torch.json: a few AdamW steps of PyTorch, for tests/optim/adamw_test.ts.

Dev-only (the project never runs Python). Usage, from the repository root:

    /tmp/ref/bin/python tools/make_adamw_fixture.py

Recipe (docs/method.md): torch.optim.AdamW (foreach=False, fused=False), betas (0.9, 0.999), eps 1e-6,
two parameter groups (a prompt at lr 0.3, an offset network at lr 1e-4), a linear warmup/decay
schedule (LambdaLR, warmup 2 of 6 steps, so the first step runs at lr 0) and clip_grad_norm_(1.0)
over all parameters together. Two cases: weight decay 0 (the recipe) and 0.01. Initial
parameters and per-step gradients are fixed (seeded) and written out as float32 values, together
with the learning rates each step used, the total norm clip_grad_norm_ returned and the
parameters after each step.
"""

import json
import pathlib

import torch

STEPS = 5
WARMUP = 2
TOTAL = 6
BETAS = (0.9, 0.999)
EPS = 1e-6
MAX_NORM = 1.0
# Gradient scale per step: the total norm lands above and below MAX_NORM.
GRAD_SCALES = [3.0, 0.2, 1.5, 0.05, 5.0]

SHAPES = {
    "prompt": (2, 3),  # group 0, lr 0.3
    "A": (3, 2),  # group 1, lr 1e-4
    "a": (2,),
    "Bw": (2, 3),
    "b": (3,),
}
GROUPS = [("prompt", 0.3, ["prompt"]), ("offset", 1e-4, ["A", "a", "Bw", "b"])]


def lr_lambda(step: int) -> float:
    """transformers.get_linear_schedule_with_warmup."""
    if step < WARMUP:
        return float(step) / float(max(1, WARMUP))
    return max(0.0, float(TOTAL - step) / float(max(1, TOTAL - WARMUP)))


def values(t: torch.Tensor) -> list:
    return t.detach().reshape(-1).tolist()  # float32 values as exact Python floats


def run_case(name: str, weight_decay: float) -> dict:
    gen = torch.Generator().manual_seed(1234)
    params = {
        k: torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float32))
        for k, s in SHAPES.items()
    }
    grads = [
        {k: torch.randn(s, generator=gen, dtype=torch.float32) * scale for k, s in SHAPES.items()}
        for scale in GRAD_SCALES
    ]
    grads[1]["a"][0] = 0.0  # an exact zero gradient
    init = {k: values(p) for k, p in params.items()}
    opt = torch.optim.AdamW(
        [
            {"params": [params[k] for k in keys], "lr": lr, "weight_decay": weight_decay}
            for _, lr, keys in GROUPS
        ],
        betas=BETAS,
        eps=EPS,
        foreach=False,
        fused=False,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    steps = []
    all_params = list(params.values())
    for t in range(STEPS):
        for k, p in params.items():
            p.grad = grads[t][k].clone()
        lrs = [g["lr"] for g in opt.param_groups]
        norm = torch.nn.utils.clip_grad_norm_(all_params, MAX_NORM, foreach=False)
        opt.step()
        sched.step()
        steps.append(
            {
                "lr": lrs,
                "grads": {k: values(g) for k, g in grads[t].items()},
                "norm": float(norm),
                "params": {k: values(p) for k, p in params.items()},
            }
        )
    return {
        "name": name,
        "groups": [
            {"name": g, "lr": lr, "weight_decay": weight_decay, "params": keys}
            for g, lr, keys in GROUPS
        ],
        "shapes": {k: list(s) for k, s in SHAPES.items()},
        "init": init,
        "steps": steps,
    }


def main() -> None:
    fixture = {
        "generator": "tools/make_adamw_fixture.py",
        "torch": torch.__version__,
        "betas": list(BETAS),
        "eps": EPS,
        "max_norm": MAX_NORM,
        "cases": [run_case("weight_decay_0", 0.0), run_case("weight_decay_0.01", 0.01)],
    }
    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "adamw_torch.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

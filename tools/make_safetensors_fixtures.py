"""Dev-only: interop fixtures for src/io/safetensors.ts (the project itself never needs Python).

Writes, under tests/fixtures/safetensors/:

  python.safetensors      tensors of every dtype we care about (F32, F16, BF16, I64, plus F64,
                          I32, I16, I8, U8, BOOL and all 256 codes of the three FP8 types),
                          written by Python `safetensors.torch.save_file`
  python.expected.json    what those tensors hold, as Python reads them back: dtype, shape and
                          values (floats widened to float64; "nan"/"inf"/"-inf" as strings; I64
                          as decimal strings), plus the metadata

With --verify-deno it instead reads deno_written.safetensors (written by our TS writer, see
below), checks that `safe_open` and `safetensors.torch.load_file` both accept it, and dumps what
Python sees into deno_written.python.json, which the TS test compares with what it wrote.

Workflow (needs a venv with torch + safetensors):

  python tools/make_safetensors_fixtures.py
  deno test -A tests/io/safetensors_test.ts -- --update-fixtures
  python tools/make_safetensors_fixtures.py --verify-deno
"""

import json
import math
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "safetensors"

SPECIAL_F32 = [0.0, -0.0, 1.0, -2.5, math.pi, 1e-45, 1.1754943508222875e-38, 3.4028234663852886e38,
               math.inf, -math.inf, math.nan]


def fixture_tensors() -> dict:
    g = torch.Generator().manual_seed(1234)
    t = {}
    t["f32.special"] = torch.tensor(SPECIAL_F32, dtype=torch.float32)
    t["f32.matrix"] = torch.randn(3, 5, generator=g, dtype=torch.float32)
    t["f16.special"] = torch.tensor(
        [0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, 6.1e-5, 0.1, math.inf, -math.inf, math.nan],
        dtype=torch.float16,
    )
    t["f16.matrix"] = torch.randn(2, 3, 4, generator=g).to(torch.float16)
    t["bf16.special"] = torch.tensor(
        [0.0, -0.0, 1.0, -3.140625, 1e38, 1e-38, 9.2e-41, 0.1, math.inf, -math.inf, math.nan],
        dtype=torch.bfloat16,
    )
    t["bf16.matrix"] = torch.randn(7, 3, generator=g).to(torch.bfloat16)
    t["i64.ids"] = torch.tensor(
        [0, 1, -1, 32127, 2**53 + 1, 2**63 - 1, -(2**63)], dtype=torch.int64
    )
    t["i64.scalar"] = torch.tensor(42, dtype=torch.int64)
    t["f64.values"] = torch.tensor([0.1, -1e300, 2.0**-1074], dtype=torch.float64)
    t["i32.values"] = torch.tensor([[1, -2], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    t["i16.values"] = torch.tensor([1, -2, 32767], dtype=torch.int16)
    t["i8.values"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    t["u8.values"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    t["bool.mask"] = torch.tensor([True, False, True], dtype=torch.bool)
    t["f32.empty"] = torch.zeros(0, 3, dtype=torch.float32)
    every_byte = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    t["f8e4m3.all"] = every_byte.clone().view(torch.float8_e4m3fn)
    t["f8e5m2.all"] = every_byte.clone().view(torch.float8_e5m2)
    t["f8e8m0.all"] = every_byte.clone().view(torch.float8_e8m0fnu)
    return t


def enc_float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def describe(t: torch.Tensor, dtype: str) -> dict:
    flat = t.reshape(-1)
    if t.is_floating_point():
        values = [enc_float(float(v)) for v in flat.to(torch.float64).tolist()]
    elif t.dtype == torch.bool:
        values = [1 if v else 0 for v in flat.tolist()]
    elif t.dtype == torch.int64:
        values = [str(v) for v in flat.tolist()]
    else:
        values = [int(v) for v in flat.tolist()]
    return {"dtype": dtype, "shape": list(t.shape), "values": values}


def dump_python_view(path: Path) -> dict:
    """What Python reads from a file: header dtypes via safe_open, values via load_file."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        dtypes = {}
        for name in f.keys():
            dtypes[name] = f.get_slice(name).get_dtype()
    return {
        "metadata": metadata,
        "tensors": {name: describe(tensors[name], dtypes[name]) for name in sorted(tensors)},
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if "--verify-deno" in sys.argv:
        src = OUT / "deno_written.safetensors"
        view = dump_python_view(src)
        (OUT / "deno_written.python.json").write_text(json.dumps(view, indent=1) + "\n")
        print(f"Python read {len(view['tensors'])} tensors from {src}")
        return
    path = OUT / "python.safetensors"
    save_file(fixture_tensors(), str(path), metadata={"format": "pt"})
    view = dump_python_view(path)
    (OUT / "python.expected.json").write_text(json.dumps(view, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes) and python.expected.json")


if __name__ == "__main__":
    main()

"""Dev-only, run by tools/tokenizer_vs_rust.ts: loads each generated tokenizer.json with Rust
`tokenizers` and compares with our verdicts (ours.json in the folder given).

Prints one line per disagreement and a count; exits 0 (the expected disagreements are listed in
tools/tokenizer_vs_rust.ts).
"""

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer

folder = Path(sys.argv[1])
ours = json.loads((folder / "ours.json").read_text())
agree = disagree = 0
for i, case in ours.items():
    try:
        text = (folder / i / "tokenizer.json").read_bytes().decode("utf-8")
        Tokenizer.from_str(text)
        rust = "ok"
    except BaseException as e:  # a Rust panic is a BaseException
        rust = "refused: " + str(e).split("\n")[0][:120]
    if (rust == "ok") == (case["verdict"] == "ok"):
        agree += 1
    else:
        disagree += 1
        print(f"case {i} ({case['gen']}): Rust {rust[:100]} | ours: {case['verdict'][:140]}")
print(f"{agree} agree, {disagree} disagree")

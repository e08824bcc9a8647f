// The benchmark records a CI job compares: matching by id, the direction of each metric, the
// tolerance, and the exit status of `deno task bench --compare` on a regression.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compareRecords,
  comparisonMarkdown,
  kernelGroup,
  readRecords,
} from "../../tasks/bench_lib.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("compareRecords() orients every metric and flags only what is worse than the tolerance", () => {
  const base = [
    { id: "a", gflops: 100, ms_per_step: 10, note: "x" },
    { id: "b", tokens_per_s: 1000 },
    { id: "gone", gflops: 1 },
  ];
  const cur = [
    { id: "a", gflops: 95, ms_per_step: 12.5 }, // 5 % slower, 20 % slower
    { id: "b", tokens_per_s: 1500 }, // faster
    { id: "new", gflops: 5 }, // no baseline: not compared
  ];
  const rows = compareRecords(cur, base, 0.1);
  assert.deepEqual(
    rows.map((r) => [r.id, r.metric, +r.ratio.toFixed(3), r.regression]),
    [["a", "gflops", 0.95, false], ["a", "ms_per_step", 0.8, true], [
      "b",
      "tokens_per_s",
      1.5,
      false,
    ]],
  );
  const md = comparisonMarkdown(rows, 0.1);
  assert.match(md, /\| a \| ms_per_step \| 10 \| 12.5 \| -20.0 % \| \*\*regression\*\* \|/);
  assert.match(md, /\| b \| tokens_per_s \| 1000 \| 1500 \| 50.0 % \| faster \|/);
  assert.match(md, /1 figure\(s\) regressed by more than 10 %/);
});

Deno.test("kernelGroup() sorts dispatches into the profile's op groups", () => {
  assert.equal(kernelGroup("matmul", "encoder.0.ffn.wi"), "matmul");
  assert.equal(kernelGroup("matmul", "encoder.0.self_attention.scores"), "attention");
  assert.equal(kernelGroup("matmul", "decoder.1.cross_attention.dv(A=x, B=y, C=z)"), "attention");
  // the projections around attention are products
  assert.equal(kernelGroup("matmul", "encoder.0.self_attention.qkv(A=x, B=y, C=z)"), "matmul");
  assert.equal(kernelGroup("matmul_scalar", "decoder.2.self_attention.o(A=x)"), "matmul");
  assert.equal(kernelGroup("attention_small", "x"), "attention");
  assert.equal(kernelGroup("softmax", "x"), "attention");
  assert.equal(kernelGroup("rms_norm_backward", "x"), "norms");
  assert.equal(kernelGroup("cross_entropy_forward", "loss"), "loss");
  assert.equal(kernelGroup("dropout", "x"), "elementwise");
});

Deno.test("deno task bench --out writes the run's info; --compare exits 1 on a regression", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "now.jsonl"), base = join(dir, "base.jsonl");
  // a baseline whose round trip took 0.01 ms: any real one is a regression
  await Deno.writeTextFile(
    base,
    JSON.stringify({ id: "submit_readback_roundtrip", ms_median: 0.01 }) + "\n",
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "tasks/bench.ts"),
      "--only",
      "roundtrip",
      "--quick",
      "--out",
      out,
      "--compare",
      base,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { ...Deno.env.toObject(), GITHUB_STEP_SUMMARY: join(dir, "summary.md") },
  }).output();
  const stdout = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 1, stdout + new TextDecoder().decode(r.stderr));
  assert.match(stdout, /\| submit_readback_roundtrip \| ms_median \| 0.01 \|.*\*\*regression\*\*/);
  const [rec] = await readRecords(out);
  for (const k of ["adapter", "vendor", "limits", "deno", "commit", "date", "ms_median"]) {
    assert.ok(k in rec, `--out records carry ${k}`);
  }
  assert.match(await Deno.readTextFile(join(dir, "summary.md")), /## Benchmarks vs/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task bench refuses unknown flags and groups before requesting a GPU, and --help lists the flags", async () => {
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "tasks/bench.ts"), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  };
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'; see --help/],
    [["--only", "matmul,bogus"], /--only bogus: unknown group; groups: matmul, roundtrip, t5/],
    [["--tolerance", "2"], /--tolerance 2: expected a fraction in \[0, 1\)/],
  ];
  for (const [args, want] of cases) {
    const r = await run(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, want);
    assert.doesNotMatch(r.err, /\[gpu\] adapter/, "refused before the GPU is requested");
  }
  const help = await run("--help");
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--only",
      "--quick",
      "--full",
      "--out",
      "--compare",
      "--tolerance",
      "--vs-torch",
      "--tune",
    ]
  ) {
    assert.ok(help.out.includes(flag), `--help lists ${flag}`);
  }
});

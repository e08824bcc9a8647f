// The source tree's imports point one way: a folder imports only itself and the folders below
// it, and no two files import each other, directly or through others.
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";

const SRC = new URL("../src/", import.meta.url).pathname;

/**
 * What each folder of src/ may import besides itself: gpu < layers < model/optim < peft < train <
 * sweep,
 * with io (files, Hub, formats) below everything and the data pipeline on io alone, so that
 * tokenizing and batching never pull in WebGPU.
 */
const ALLOWED: Record<string, readonly string[]> = {
  gpu: [],
  io: [],
  layers: ["gpu", "io"],
  model: ["gpu", "io", "layers"],
  optim: ["gpu", "io", "layers"],
  data: ["io"],
  peft: ["gpu", "io", "layers", "model", "optim"],
  train: ["gpu", "io", "layers", "model", "optim", "data", "peft"],
  sweep: ["gpu", "io", "layers", "model", "optim", "data", "peft", "train"],
};

async function sourceFiles(dir = SRC): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await sourceFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Relative imports of a file (import and export-from statements, not doc examples). */
function importsOf(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const re = /^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gm;
  return [...code.matchAll(re)].map((m) => join(dirname(file), m[1]));
}

const files = await sourceFiles();
const graph = new Map<string, string[]>();
for (const f of files) graph.set(f, importsOf(f, await Deno.readTextFile(f)));
const folder = (f: string) => relative(SRC, f).split("/")[0];

Deno.test("every src/ folder imports only itself and the folders below it", () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    const from = folder(f);
    if (f === join(SRC, from)) continue; // a file at the root of src/
    assert.ok(from in ALLOWED, `src/${from}/ is not placed in tests/layering_test.ts`);
    for (const d of deps) {
      const to = folder(d);
      if (to === from) continue;
      if (!ALLOWED[from].includes(to)) {
        bad.push(`${relative(SRC, f)} imports ${relative(SRC, d)}`);
      }
    }
  }
  assert.deepEqual(bad, [], `imports against the layering:\n${bad.join("\n")}`);
});

Deno.test("no import cycle among the files of src/", () => {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") {
      cycles.push([...stack.slice(stack.indexOf(f)), f].map((x) => relative(SRC, x)).join(" -> "));
      return;
    }
    state.set(f, "open");
    stack.push(f);
    for (const d of graph.get(f) ?? []) visit(d);
    stack.pop();
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join("\n")}`);
});

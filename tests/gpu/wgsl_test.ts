import assert from "node:assert/strict";
import {
  expandIncludes,
  GENERATED,
  readKernels,
  readSnippets,
  renderWgslModule,
} from "../../tasks/gen_kernels.ts";
import { parseKernelInterface } from "../../src/gpu/wgsl.ts";
import { WGSL } from "../../src/gpu/wgsl.generated.ts";
import type { KernelName } from "../../src/gpu/kernel.ts";
import { gpuTest } from "../gpu_support.ts";

Deno.test("src/gpu/wgsl.generated.ts is up to date with kernels/*.wgsl (run `deno task gen`)", async () => {
  const expected = renderWgslModule(await readKernels());
  const actual = await Deno.readTextFile(GENERATED);
  assert.ok(
    actual === expected,
    "src/gpu/wgsl.generated.ts is stale: run `deno task gen` and commit it",
  );
});

Deno.test("`//! include` lines are replaced by kernels/include/ snippets, recursively", () => {
  const snippets = {
    "a.wgsl": '// a\nfn a() -> f32 { return b(); }\n//! include "b.wgsl"\n',
    "b.wgsl": "fn b() -> f32 { return 1.0; }\n",
  };
  const kernel = '// k\n  //! include "a.wgsl"  \n@compute @workgroup_size(1) fn main() {}\n';
  assert.equal(
    expandIncludes(kernel, snippets, "kernels/k.wgsl"),
    "// k\n// a\nfn a() -> f32 { return b(); }\nfn b() -> f32 { return 1.0; }\n" +
      "@compute @workgroup_size(1) fn main() {}\n",
  );
  // Ordinary comments are left alone.
  assert.equal(expandIncludes('// include "a.wgsl"\n', snippets, "k"), '// include "a.wgsl"\n');
});

Deno.test("an unknown include, an include cycle or a malformed directive is an error naming the line", () => {
  const snippets = { "a.wgsl": '//! include "b.wgsl"\n', "b.wgsl": '//! include "a.wgsl"\n' };
  assert.throws(
    () => expandIncludes('// k\n//! include "nope.wgsl"\n', snippets, "kernels/k.wgsl"),
    (e: Error) => {
      assert.match(e.message, /^kernels\/k\.wgsl:2: unknown include "nope\.wgsl"/);
      assert.match(e.message, /kernels\/include\/ has a\.wgsl, b\.wgsl/);
      return true;
    },
  );
  assert.throws(
    () => expandIncludes('//! include "a.wgsl"\n', snippets, "kernels/k.wgsl"),
    /kernels\/include\/b\.wgsl:1: include cycle a\.wgsl -> b\.wgsl -> a\.wgsl/,
  );
  for (
    const bad of [
      "//! include a.wgsl",
      '//!include "a.wgsl"',
      '//! import "a.wgsl"',
      '//! include "../x.wgsl"',
    ]
  ) {
    assert.throws(
      () => expandIncludes(`${bad}\n`, snippets, "kernels/k.wgsl"),
      /kernels\/k\.wgsl:1: .* is not a directive; write \/\/! include "name\.wgsl"/,
      bad,
    );
  }
});

Deno.test("every snippet of kernels/include/ is included by some kernel (or by a snippet a kernel includes), and no kernel keeps a directive", async () => {
  const snippets = await readSnippets();
  assert.ok(Object.keys(snippets).length > 0);
  const raw = await Promise.all(
    [...Deno.readDirSync(new URL("../../kernels/", import.meta.url))]
      .filter((e) => e.isFile && e.name.endsWith(".wgsl"))
      .map((e) => Deno.readTextFile(new URL(`../../kernels/${e.name}`, import.meta.url))),
  );
  // the snippets reached from the kernels, through snippets that include others
  const used = new Set<string>();
  let sources = raw;
  while (sources.length) {
    const next = Object.keys(snippets).filter((name) =>
      !used.has(name) && sources.some((s) => s.includes(`//! include "${name}"`))
    );
    next.forEach((name) => used.add(name));
    sources = next.map((name) => snippets[name]);
  }
  for (const name of Object.keys(snippets)) assert.ok(used.has(name), `${name} is used`);
  for (const { name, source } of await readKernels()) {
    assert.doesNotMatch(source, /^\s*\/\/!/m, `${name}: directives are expanded`);
  }
});

Deno.test("every kernel declares a header comment, an entry point `main` and a valid interface", async () => {
  for (const { name, source } of await readKernels()) {
    assert.match(source, /^\/\/ \w+/, `kernels/${name}.wgsl must start with a header comment`);
    assert.match(source, /@compute[\s\S]*fn main\(/, `kernels/${name}.wgsl needs @compute fn main`);
    assert.match(source, /Shapes?/, `kernels/${name}.wgsl header must state the buffer shapes`);
    parseKernelInterface(name, source);
  }
});

Deno.test("parseKernelInterface() reads bindings, uniform fields and overrides", () => {
  const iface = parseKernelInterface(
    "x",
    `
    override WG: u32 = 64;
    struct P { n: u32, scale: f32, off: i32, }
    @group(0) @binding(0) var<uniform> params: P;
    @group(0) @binding(1) var<storage, read> src: array<f32>;
    @group(0) @binding(2) var<storage, read_write> dst: array<f32>;
    @compute @workgroup_size(WG) fn main() {}`,
  );
  assert.deepEqual(iface.bindings.map((b) => [b.index, b.name, b.kind]), [
    [0, "params", "uniform"],
    [1, "src", "read"],
    [2, "dst", "read_write"],
  ]);
  assert.deepEqual(iface.params, [
    { name: "n", type: "u32" },
    { name: "scale", type: "f32" },
    { name: "off", type: "i32" },
  ]);
  assert.deepEqual(iface.overrides, ["WG"]);
  assert.throws(
    () =>
      parseKernelInterface(
        "y",
        `struct P { v: vec4<f32> } @group(0) @binding(0) var<uniform> params: P;`,
      ),
    /uniform field "v: vec4<f32>" must be a 4-byte scalar/,
  );
  assert.throws(
    () => parseKernelInterface("z", `@group(0) @binding(1) var<storage, read> a: array<f32>;`),
    /binding indices must be 0..0 without gaps/,
  );
});

gpuTest(
  "every kernel compiles on this adapter, with its inputs read-only and all writable",
  async (gpu) => {
    for (const name of Object.keys(WGSL) as KernelName[]) {
      // f16 kernels (`enable f16;`) need shader-f16; lavapipe offers it, so CI compiles them
      if (/^\s*enable f16;/m.test(WGSL[name]) && !gpu.hasF16) continue;
      gpu.kernels.get(name);
      const inputs = gpu.kernels.iface(name).bindings.filter((b) => b.kind === "read");
      gpu.kernels.get(name, {}, inputs.map((b) => b.name));
    }
    await gpu.flush();
  },
);

import assert from "node:assert/strict";
import { GENERATED, readKernels, renderWgslModule } from "../../tasks/gen_kernels.ts";
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
      gpu.kernels.get(name);
      const inputs = gpu.kernels.iface(name).bindings.filter((b) => b.kind === "read");
      gpu.kernels.get(name, {}, inputs.map((b) => b.name));
    }
    await gpu.flush();
  },
);

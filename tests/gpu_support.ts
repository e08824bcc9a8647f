/**
 * The shared WebGPU device for GPU tests.
 *
 * Every GPU test is declared with {@link gpuTest}. With an adapter, it runs on it (lavapipe on
 * CPU-only machines). Without one it FAILS when `CI=true` (or `ADEPT_REQUIRE_GPU=1`), so CI can
 * never pass by skipping kernels; elsewhere it is reported as ignored, with a warning naming
 * the fix.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Gpu, requestGpu } from "../src/gpu/device.ts";
import { ShapeError } from "../src/gpu/errors.ts";

const required = Deno.env.get("CI") === "true" || Deno.env.get("ADEPT_REQUIRE_GPU") === "1";

let gpuOrError: Gpu | Error;
try {
  gpuOrError = await requestGpu({ log: false });
} catch (e) {
  gpuOrError = e as Error;
}

if (gpuOrError instanceof Error && !required) {
  console.warn(
    `WARNING: GPU tests are ignored: ${gpuOrError.message} (set CI=true to make this a failure)`,
  );
}

/** The test device, or the error that prevented getting one. */
export const testGpu: Gpu | Error = gpuOrError;

/** A test that needs the GPU; it receives the shared device. */
export function gpuTest(name: string, fn: (gpu: Gpu) => Promise<void> | void): void {
  const g = gpuOrError;
  Deno.test({
    name,
    ignore: g instanceof Error && !required,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (g instanceof Error) throw g;
      await fn(g);
    },
  });
}

/** Asserts that `fn` throws a ShapeError mentioning every part, and builds nothing on the GPU. */
export function assertShapeError(gpu: Gpu, fn: () => unknown, ...parts: string[]): void {
  const kernels = gpu.kernels.size;
  const bytes = gpu.allocatedBytes;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ShapeError, `expected a ShapeError, got ${e}`);
    for (const p of parts) {
      assert.ok(e.message.includes(p), `message "${e.message}" should mention "${p}"`);
    }
    return true;
  });
  assert.equal(gpu.kernels.size, kernels, "no pipeline may be compiled before the error");
  assert.equal(gpu.allocatedBytes, bytes, "nothing may be allocated before the error");
}

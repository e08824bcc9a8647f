import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs `deno <args>` in a process whose Vulkan loader finds no driver: no WebGPU adapter. */
async function withoutAdapter(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: {
      DENO_WEBGPU_BACKEND: "vulkan",
      VK_DRIVER_FILES: "/nonexistent/icd.json",
      VK_ICD_FILENAMES: "/nonexistent/icd.json",
      CI: "",
      ADEPT_REQUIRE_GPU: "",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("without an adapter, requestGpu() throws NoAdapterError saying how to get one", async () => {
  const { code, text } = await withoutAdapter([
    "eval",
    `import { requestGpu } from "./src/gpu/device.ts";
     try { await requestGpu(); } catch (e) { console.log(e.name + ": " + e.message); Deno.exit(3); }`,
  ]);
  assert.equal(code, 3, text);
  assert.match(text, /NoAdapterError: No WebGPU adapter was found/);
  assert.match(text, /mesa-vulkan-drivers/);
});

Deno.test("without an adapter the GPU tests fail when CI=true, and are reported ignored otherwise", async () => {
  const test = ["test", "-A", "--no-check", "tests/gpu/wgsl_test.ts"];
  const ci = await withoutAdapter(test, { CI: "true" });
  assert.notEqual(ci.code, 0, ci.text);
  assert.match(ci.text, /every kernel compiles on this adapter.*FAILED/);
  assert.match(ci.text, /No WebGPU adapter was found/);
  const local = await withoutAdapter(test);
  assert.equal(local.code, 0, local.text);
  assert.match(local.text, /WARNING: GPU tests are ignored/);
  assert.match(local.text, /every kernel compiles on this adapter.*ignored/);
});

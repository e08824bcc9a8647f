import assert from "node:assert/strict";
import {
  GpuDeviceLostError,
  GpuLimitError,
  GpuValidationError,
  ShapeError,
} from "../../src/gpu/errors.ts";
import { planArena, requestGpu, VIEW_ALIGNMENT } from "../../src/gpu/device.ts";
import { buildOp, grid1d, uniformBytes } from "../../src/gpu/op.ts";
import { fill } from "../../src/layers/fill.ts";
import { matmul } from "../../src/layers/matmul.ts";
import { sumRows } from "../../src/layers/reduce.ts";
import { softmax } from "../../src/layers/softmax.ts";
import { gpuTest } from "../gpu_support.ts";

gpuTest(
  "requestGpu() logs the adapter's description, vendor and features, then the reduction path",
  async () => {
    const lines: string[] = [];
    const gpu = await requestGpu({ log: (l) => lines.push(l) });
    try {
      assert.equal(lines.length, 2);
      assert.match(lines[0], /^\[gpu\] adapter: .+ \(vendor .+\); features: /);
      assert.match(lines[1], /^\[gpu\] reductions: (subgroups|workgroup-memory trees) \(/);
      assert.ok(lines[0].includes(gpu.adapter.description));
      assert.ok(gpu.adapter.description.length > 0);
      // The limits the kernels need are raised to the adapter's maxima, beyond WebGPU's defaults.
      assert.ok(gpu.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
      assert.ok(gpu.limits.maxBufferSize >= 256 * 1024 * 1024);
      assert.ok(gpu.limits.maxComputeWorkgroupStorageSize >= 16384);
    } finally {
      gpu.destroy();
    }
  },
);

gpuTest(
  "upload() and read() round-trip f32, i32, u32 and f16 data, odd byte lengths included",
  async (gpu) => {
    const f = new Float32Array([1.5, -2, 3e30, 0, -0, Infinity]);
    assert.deepEqual(await gpu.read(gpu.upload("f", f)), f);
    const i = new Int32Array([-100, 0, 7, 2147483647, -2147483648]);
    assert.deepEqual(await gpu.read(gpu.upload("i", i)), i);
    const u = new Uint32Array([0, 1, 4294967295]);
    assert.deepEqual(await gpu.read(gpu.upload("u", u)), u);
    if (gpu.hasF16) {
      const h = new Float16Array([1, -2, 0.5]); // 6 bytes: padded to 8 on upload
      assert.deepEqual(await gpu.read(gpu.upload("h", h)), h);
    }
  },
);

gpuTest("write() refuses data whose dtype or length disagrees with the tensor", (gpu) => {
  const t = gpu.tensor("t", [2, 3]);
  assert.throws(
    () => gpu.write(t, new Float32Array(5)),
    (e: Error) =>
      e instanceof ShapeError && /t\(2, 3\) f32: got 5 elements of f32, expected 6/.test(e.message),
  );
  assert.throws(() => gpu.write(t, new Int32Array(6)), /got 6 elements of i32, expected 6 of f32/);
});

gpuTest("arena() allocates once and hands out aligned, independent named views", async (gpu) => {
  const before = gpu.allocatedBytes;
  const arena = gpu.arena("acts", {
    x: { shape: [3, 5] },
    ids: { shape: [7], dtype: "i32" },
    y: { shape: [2, 2] },
  });
  assert.equal(arena.buffers.length, 1);
  assert.equal(gpu.allocatedBytes - before, arena.byteLength);
  const { x, ids, y } = arena.tensors;
  assert.equal(x.name, "acts.x");
  assert.deepEqual(ids.shape, [7]);
  for (const t of [x, ids, y]) assert.equal(t.offset % VIEW_ALIGNMENT, 0);
  assert.ok(ids.offset >= x.offset + x.byteLength && y.offset >= ids.offset + ids.byteLength);
  gpu.write(x, new Float32Array(15).fill(1));
  gpu.write(ids, new Int32Array([1, 2, 3, 4, 5, 6, 7]));
  gpu.write(y, new Float32Array([9, 8, 7, 6]));
  assert.deepEqual(await gpu.read(x), new Float32Array(15).fill(1));
  assert.deepEqual(await gpu.read(ids), new Int32Array([1, 2, 3, 4, 5, 6, 7]));
  assert.deepEqual(await gpu.read(y), new Float32Array([9, 8, 7, 6]));
  // A kernel may read one view and write another view of the same buffer in one dispatch.
  const a = gpu.arena("mm", { a: { shape: [2, 2] }, b: { shape: [2, 2] }, c: { shape: [2, 2] } });
  gpu.write(a.tensors.a, new Float32Array([1, 2, 3, 4]));
  gpu.write(a.tensors.b, new Float32Array([1, 0, 0, 1]));
  await gpu.run(matmul(gpu, { a: a.tensors.a, b: a.tensors.b, out: a.tensors.c }));
  assert.deepEqual(await gpu.read(a.tensors.c), new Float32Array([1, 2, 3, 4]));
  gpu.freeArena(arena);
  gpu.freeArena(a);
});

Deno.test("planArena() splits tensors across buffers when they exceed maxBufferSize", () => {
  const plan = planArena("w", {
    a: { shape: [100] }, // 400 bytes
    b: { shape: [100] },
    c: { shape: [300] }, // 1200 bytes: does not fit after a and b in 1536
  }, 1536);
  assert.deepEqual(plan, [
    { size: 912, items: [["a", 0], ["b", 512]] },
    { size: 1200, items: [["c", 0]] },
  ]);
  assert.throws(
    () => planArena("w", { big: { shape: [1000] } }, 1536),
    (e: Error) =>
      e instanceof GpuLimitError &&
      /w\.big .* needs 4000 bytes, more than the device's maxBufferSize of 1536/.test(e.message),
  );
});

gpuTest("tensor() larger than maxBufferSize throws a GpuLimitError naming the limit", (gpu) => {
  const max = gpu.limits.maxBufferSize;
  assert.throws(
    () => gpu.tensor("huge", [Math.ceil(max / 4) + 1]),
    (e: Error) => e instanceof GpuLimitError && e.message.includes(`maxBufferSize of ${max}`),
  );
  assert.throws(() => gpu.tensor("neg", [-1]), ShapeError);
});

Deno.test("uniform blocks are padded to 16 bytes and large 1-D grids fold into two dimensions", () => {
  assert.equal(uniformBytes(0), 16);
  assert.equal(uniformBytes(2), 16);
  assert.equal(uniformBytes(5), 32);
  assert.equal(uniformBytes(18), 80);
  assert.deepEqual(grid1d(10, 65535), [10, 1, 1]);
  assert.deepEqual(grid1d(70000, 65535), [35000, 2, 1]);
  assert.deepEqual(grid1d(0, 65535), [1, 1, 1]);
  assert.throws(() => grid1d(65535 * 65535 + 1, 65535), GpuLimitError);
});

gpuTest(
  "a launch of more than 65535 workgroups is folded and covers every element",
  async (gpu) => {
    const n = 70_001;
    const out = gpu.tensor("out", [n]);
    // One thread per workgroup: 70001 workgroups, more than one dimension allows.
    const op = fill(gpu, { out, value: 3, workgroupSize: 1 });
    assert.deepEqual(op.dispatches[0].workgroups, [35001, 2, 1]);
    await gpu.run(op);
    const got = await gpu.read(out);
    assert.equal(got.findIndex((v) => v !== 3), -1);
  },
);

gpuTest("pipelines are compiled once per kernel and constants, then reused", (gpu) => {
  const a = gpu.tensor("a", [4, 4]), b = gpu.tensor("b", [4, 4]), c = gpu.tensor("c", [4, 4]);
  matmul(gpu, { a, b, out: c });
  const n = gpu.kernels.size;
  matmul(gpu, { a, b, out: c });
  assert.equal(gpu.kernels.size, n);
  matmul(gpu, { a, b, out: c, transB: true });
  assert.equal(gpu.kernels.size, n + 1);
  assert.strictEqual(gpu.kernels.get("fill", { WG: 64 }), gpu.kernels.get("fill", { WG: 64 }));
});

gpuTest("kernel interface mistakes are reported with the kernel and the field", (gpu) => {
  const out = gpu.tensor("out", [4]);
  assert.throws(
    () =>
      buildOp(gpu, {
        kernel: "fill",
        label: "f",
        bindings: { out },
        params: { n: 4 },
        workgroups: 1,
      }),
    /kernel f: uniform field "value" was not given a value/,
  );
  assert.throws(
    () =>
      buildOp(gpu, {
        kernel: "fill",
        label: "f",
        bindings: {},
        params: { n: 4, value: 0 },
        workgroups: 1,
      }),
    /f: kernel fill needs a tensor for binding "out"/,
  );
  assert.throws(
    () =>
      buildOp(gpu, {
        kernel: "fill",
        label: "f",
        bindings: { out, extra: out },
        params: { n: 4, value: 0 },
        workgroups: 1,
      }),
    /kernel fill has no binding\(s\) extra/,
  );
  assert.throws(
    () => gpu.kernels.get("fill", { NOPE: 1 }),
    /kernel fill has no override constant "NOPE" \(it has: WG\)/,
  );
  assert.throws(
    () =>
      buildOp(gpu, {
        kernel: "fill",
        label: "f",
        bindings: { out },
        params: { n: -1, value: 0 },
        workgroups: 1,
      }),
    /u32 cannot hold -1/,
  );
});

gpuTest(
  "a validation error during run() is raised as GpuValidationError naming the op",
  async (gpu) => {
    const out = gpu.tensor("victim", [8]);
    const op = fill(gpu, { out, value: 1 });
    gpu.freeBuffer(out.buffer); // the op now refers to a destroyed buffer
    await assert.rejects(
      gpu.run([op], "test-step"),
      (e: Error) =>
        e instanceof GpuValidationError && e.message.includes("test-step [fill(victim(8) f32)]"),
    );
    // The device stays usable afterwards.
    const ok = gpu.tensor("ok", [2]);
    await gpu.run(fill(gpu, { out: ok, value: 2 }));
    assert.deepEqual(await gpu.read(ok), new Float32Array([2, 2]));
  },
);

gpuTest(
  "a lost device raises GpuDeviceLostError from run(), read() and sync() instead of hanging",
  async () => {
    const gpu = await requestGpu({ log: false });
    const t = gpu.tensor("t", [4]);
    const op = fill(gpu, { out: t, value: 1 });
    gpu.destroy();
    const timeout = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error("hung")), 5000))]);
    await assert.rejects(timeout(gpu.read(t)), GpuDeviceLostError);
    await assert.rejects(timeout(gpu.run(op)), GpuDeviceLostError);
    await assert.rejects(timeout(gpu.sync()), GpuDeviceLostError);
    assert.throws(() => gpu.tensor("after", [1]), /GPU device was lost \(reason: destroyed\)/);
  },
);

gpuTest("empty tensors upload and read back without touching the queue", async (gpu) => {
  const e = gpu.upload("empty", new Float32Array(0));
  assert.equal(e.size, 0);
  assert.deepEqual(await gpu.read(e), new Float32Array(0));
  gpu.zero(e);
});

gpuTest(
  "strict aliasing refuses an in-place launch and unknown uniform fields are refused",
  async () => {
    const gpu = await requestGpu({ log: false });
    try {
      gpu.strictAliasing = true;
      const x = gpu.tensor("x", [1, 1, 2, 3]);
      assert.throws(
        () => softmax(gpu, { x, out: x }),
        /bindings "x" and "y" overlap in one buffer and one of them is writable/,
      );
      const y = gpu.tensor("y", [1, 1, 2, 3]);
      softmax(gpu, { x, out: y }); // distinct buffers: fine
      const arena = gpu.arena("a", { p: { shape: [1, 1, 2, 3] }, q: { shape: [1, 1, 2, 3] } });
      softmax(gpu, { x: arena.tensors.p, out: arena.tensors.q }); // one buffer, disjoint ranges: fine
      const op = fill(gpu, { out: y, value: 1 });
      assert.throws(
        () => op.setParams({ valeu: 2 }),
        /unknown uniform field "valeu" \(fields: n, value\)/,
      );
    } finally {
      gpu.destroy();
    }
  },
);

gpuTest("Op.destroy() frees the op's uniforms and the scratch its launcher allocated", (gpu) => {
  const before = gpu.allocatedBytes;
  const x = gpu.tensor("x", [300, 7]);
  const out = gpu.tensor("out", [7]);
  const afterTensors = gpu.allocatedBytes;
  const op = sumRows(gpu, { x, out }); // 300 rows: two passes through a partials buffer
  assert.ok(op.owned.length > 0);
  assert.ok(gpu.allocatedBytes > afterTensors);
  op.destroy();
  assert.equal(gpu.allocatedBytes, afterTensors);
  gpu.freeBuffer(x.buffer);
  gpu.freeBuffer(out.buffer);
  assert.equal(gpu.allocatedBytes, before);
});

gpuTest(
  "a device lost while a readback is in flight settles the read instead of hanging",
  async () => {
    const gpu = await requestGpu({ log: false });
    const t = gpu.upload("t", new Float32Array(1 << 16).fill(1));
    const pending = gpu.read(t);
    gpu.device.destroy(); // behind the Gpu's back: only the lost promise reports it
    const settled = await Promise.race([
      pending.then(
        () => "resolved",
        (e) => e instanceof GpuDeviceLostError ? "lost" : `other: ${e}`,
      ),
      new Promise<string>((r) => setTimeout(() => r("hung"), 5000)),
    ]);
    // The copy may finish before the loss lands; either way the promise settles, and a failure
    // names the loss rather than a generic validation error.
    assert.ok(settled === "resolved" || settled === "lost", settled);
    await assert.rejects(gpu.read(t), GpuDeviceLostError);
  },
);

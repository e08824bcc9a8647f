/**
 * Operations: ready-to-record lists of dispatches (pipeline + bind group + workgroup counts)
 * that a launcher built once. Recording an {@link Op} into a compute pass costs no allocation,
 * so a training step can be replayed many times.
 *
 * @module
 */

import type { Gpu } from "./device.ts";
import { GpuLimitError } from "./errors.ts";
import type { Constants, KernelName } from "./kernel.ts";
import { Tensor } from "./tensor.ts";
import type { KernelInterface } from "./wgsl.ts";

/** One recorded dispatch. */
export interface Dispatch {
  /** The kernel's name (its file in `kernels/`), for profiles. */
  kernel: KernelName;
  /** Compiled pipeline. */
  pipeline: GPUComputePipeline;
  /** Bind group 0. */
  bindGroup: GPUBindGroup;
  /** Workgroup counts (x, y, z), each within `maxComputeWorkgroupsPerDimension`. */
  workgroups: readonly [number, number, number];
}

/**
 * A ready-to-record operation: one or more dispatches built once by a launcher.
 *
 * @example
 * ```ts
 * import { matmul, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const a = gpu.upload("a", new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const out = gpu.tensor("out", [2, 2]);
 * const op = matmul(gpu, { a, b: a, out }); // pipeline, bind group and uniforms built once
 * await gpu.run([op]); // recorded into one compute pass, submitted, errors checked
 * assert.deepEqual(await gpu.read(out), new Float32Array([7, 10, 15, 22]));
 * await gpu.run([op]); // replayed without allocating
 * gpu.destroy();
 * ```
 */
export class Op {
  constructor(
    /** Kernel name plus shapes, used in error messages and GPU labels. */
    readonly label: string,
    /** The dispatches, recorded in order. */
    readonly dispatches: readonly Dispatch[],
    /** Uniform buffers owned by this op, with their packers (see {@link Op.setParams}). */
    private readonly uniforms: readonly UniformBlock[] = [],
    /** Scratch tensors the launcher allocated for this op (freed by {@link Op.destroy}). */
    readonly owned: readonly Tensor[] = [],
    private readonly gpu?: Gpu,
  ) {}

  /** Frees the op's uniform buffers and scratch; the op must not be recorded afterwards. */
  destroy(): void {
    if (!this.gpu || this.#destroyed) return;
    this.#destroyed = true;
    for (const u of this.uniforms) this.gpu.freeBuffer(u.buffer);
    for (const t of this.owned) this.gpu.freeBuffer(t.buffer);
  }

  #destroyed = false;

  /** Records every dispatch into `pass`. */
  record(pass: GPUComputePassEncoder): void {
    for (const d of this.dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
  }

  /**
   * Rewrites uniform fields of every dispatch (for example a sequence length that changes per
   * batch). The write is queued at once and lands before the next submit, so one submit sees one
   * value: recording the op twice in one submit with different values is not possible. Fields
   * not given keep their values; unknown names throw.
   */
  setParams(params: Record<string, number>): void {
    for (const u of this.uniforms) u.set(params);
  }
}

/** A uniform buffer and the struct layout it follows. */
export class UniformBlock {
  readonly #data: ArrayBuffer;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #f32: Float32Array;

  constructor(
    private readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    private readonly kernel: string,
    private readonly fields: KernelInterface["params"],
    initial: Record<string, number>,
  ) {
    this.#data = new ArrayBuffer(buffer.size);
    this.#u32 = new Uint32Array(this.#data);
    this.#i32 = new Int32Array(this.#data);
    this.#f32 = new Float32Array(this.#data);
    for (const f of fields) {
      if (!(f.name in initial)) {
        throw new Error(`kernel ${kernel}: uniform field "${f.name}" was not given a value`);
      }
    }
    this.set(initial);
  }

  /** Packs `params` (by field name) and writes them to the buffer. */
  set(params: Record<string, number>): void {
    for (const k of Object.keys(params)) {
      if (!this.fields.some((f) => f.name === k)) {
        throw new Error(
          `kernel ${this.kernel}: unknown uniform field "${k}" (fields: ${
            this.fields.map((f) => f.name).join(", ")
          })`,
        );
      }
    }
    this.fields.forEach((f, i) => {
      if (!(f.name in params)) return;
      const v = params[f.name];
      if (f.type === "f32") {
        this.#f32[i] = v;
      } else {
        const lo = f.type === "u32" ? 0 : -(2 ** 31);
        const hi = f.type === "u32" ? 2 ** 32 - 1 : 2 ** 31 - 1;
        if (!Number.isInteger(v) || v < lo || v > hi) {
          throw new GpuLimitError(
            `kernel ${this.kernel}: uniform field ${f.name}: ${f.type} cannot hold ${v}`,
          );
        }
        if (f.type === "u32") this.#u32[i] = v;
        else this.#i32[i] = v;
      }
    });
    this.gpu.device.queue.writeBuffer(this.buffer, 0, this.#data);
  }
}

/** What a launcher gives {@link buildOp}. */
export interface OpSpec {
  /** Kernel file name (without `.wgsl`). */
  kernel: KernelName;
  /** Label for errors: op name plus shapes. */
  label: string;
  /** Storage bindings by WGSL variable name. */
  bindings: Record<string, Tensor>;
  /** Uniform values by field name (for kernels with a `params` uniform). */
  params?: Record<string, number>;
  /** Baked override constants. */
  constants?: Constants;
  /**
   * Workgroup counts. A number is a 1-D count that is folded into (x, y) when it exceeds the
   * per-dimension limit: kernels then compute `wid.x + wid.y * nwg.x` and guard the tail.
   */
  workgroups: number | readonly [number, number, number];
}

/** Splits a 1-D workgroup count into (x, y, 1) with x, y within `maxPerDim`. */
export function grid1d(n: number, maxPerDim: number): [number, number, number] {
  if (n <= maxPerDim) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / maxPerDim);
  if (y > maxPerDim) {
    throw new GpuLimitError(
      `${n} workgroups exceed ${maxPerDim}² (maxComputeWorkgroupsPerDimension squared)`,
    );
  }
  return [Math.ceil(n / y), y, 1];
}

/**
 * Builds an {@link Op} of one dispatch: checks the bindings against the kernel's interface and
 * the device's limits, picks the read/write variant when a buffer is both read and written,
 * and creates the uniform buffer and bind group once.
 */
export function buildOp(gpu: Gpu, spec: OpSpec, owned: readonly Tensor[] = []): Op {
  const [d, u] = buildDispatch(gpu, spec);
  return new Op(spec.label, d, u, owned, gpu);
}

/**
 * Builds several dispatches into one {@link Op} (chunked launches, multi-pass kernels);
 * `owned` lists scratch tensors the launcher allocated, freed with the op.
 */
export function buildOps(
  gpu: Gpu,
  label: string,
  specs: OpSpec[],
  owned: readonly Tensor[] = [],
): Op {
  const ds: Dispatch[] = [];
  const us: UniformBlock[] = [];
  for (const s of specs) {
    const [d, u] = buildDispatch(gpu, s);
    ds.push(...d);
    us.push(...u);
  }
  return new Op(label, ds, us, owned, gpu);
}

/** Whether two bindings cover overlapping bytes of one buffer. */
function overlaps(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset < b.offset + b.bindingSize &&
    b.offset < a.offset + a.bindingSize;
}

function buildDispatch(gpu: Gpu, spec: OpSpec): [Dispatch[], UniformBlock[]] {
  const iface = gpu.kernels.iface(spec.kernel);
  const limits = gpu.device.limits;
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const wg = typeof spec.workgroups === "number"
    ? grid1d(spec.workgroups, maxDim)
    : spec.workgroups;
  for (const w of wg) {
    if (!Number.isInteger(w) || w < 0 || w > maxDim) {
      throw new GpuLimitError(
        `${spec.label}: workgroup count ${w} exceeds maxComputeWorkgroupsPerDimension ${maxDim}`,
      );
    }
  }
  const given = new Set(Object.keys(spec.bindings));
  const writtenBuffers = new Set<GPUBuffer>();
  for (const b of iface.bindings) {
    if (b.kind === "uniform") continue;
    const t = spec.bindings[b.name];
    if (!(t instanceof Tensor)) {
      throw new Error(
        `${spec.label}: kernel ${spec.kernel} needs a tensor for binding "${b.name}"`,
      );
    }
    given.delete(b.name);
    if (t.bindingSize > limits.maxStorageBufferBindingSize) {
      throw new GpuLimitError(
        `${spec.label}: tensor ${t.describe()} is ${t.bindingSize} bytes, more than the ` +
          `device's maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize} bytes`,
      );
    }
    if (b.kind === "read_write") writtenBuffers.add(t.buffer);
  }
  if (given.size > 0) {
    throw new Error(
      `${spec.label}: kernel ${spec.kernel} has no binding(s) ${[...given].join(", ")}`,
    );
  }
  // Inputs that share a buffer with an output must be declared writable (WebGPU forbids
  // read-only and writable use of one buffer in a dispatch, even on disjoint ranges).
  const rw = iface.bindings.filter((b) =>
    b.kind === "read" && writtenBuffers.has(spec.bindings[b.name].buffer)
  ).map((b) => b.name);
  if (gpu.strictAliasing) {
    const storage = iface.bindings.filter((b) => b.kind !== "uniform");
    const isWritable = (b: (typeof storage)[number]) =>
      b.kind === "read_write" || rw.includes(b.name);
    for (let i = 0; i < storage.length; i++) {
      for (let j = i + 1; j < storage.length; j++) {
        const [x, y] = [storage[i], storage[j]];
        const writable = isWritable(x) || isWritable(y);
        if (writable && overlaps(spec.bindings[x.name], spec.bindings[y.name])) {
          throw new Error(
            `${spec.label}: bindings "${x.name}" and "${y.name}" overlap in one buffer and one of ` +
              "them is writable, which WebGPU forbids (strict aliasing is on)",
          );
        }
      }
    }
  }
  const kernel = gpu.kernels.get(spec.kernel, spec.constants, rw);
  const uniforms: UniformBlock[] = [];
  const entries: GPUBindGroupEntry[] = iface.bindings.map((b) => {
    if (b.kind === "uniform") {
      const buffer = gpu.allocBuffer(
        `${spec.label}.params`,
        uniformBytes(iface.params.length),
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      );
      uniforms.push(new UniformBlock(gpu, buffer, spec.label, iface.params, spec.params ?? {}));
      return { binding: b.index, resource: { buffer } };
    }
    const t = spec.bindings[b.name];
    return {
      binding: b.index,
      resource: { buffer: t.buffer, offset: t.offset, size: t.bindingSize },
    };
  });
  if (iface.params.length > 0 && uniforms.length === 0) {
    throw new Error(`kernel ${spec.kernel}: has a params struct but no uniform binding`);
  }
  const bindGroup = gpu.checked(
    `binding ${spec.label}`,
    () => gpu.device.createBindGroup({ label: spec.label, layout: kernel.layout, entries }),
  );
  return [
    [{ kernel: spec.kernel, pipeline: kernel.pipeline, bindGroup, workgroups: wg }],
    uniforms,
  ];
}

/** Bytes of a uniform block of `fields` 4-byte scalars: padded to 16, at least 16. */
export function uniformBytes(fields: number): number {
  return Math.max(16, Math.ceil(fields * 4 / 16) * 16);
}

/** Workgroups needed for `n` threads in groups of `size` (at least 1). */
export function workgroupsFor(n: number, size = 256): number {
  return Math.max(1, Math.ceil(n / size));
}

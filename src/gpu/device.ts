/**
 * The headless WebGPU runtime: device acquisition, allocation, upload, readback and submission.
 *
 * This is the only module that touches `navigator.gpu`. One {@link Gpu} wraps one device; all
 * work for a training step is recorded into one compute pass and submitted once
 * ({@link Gpu.run}). Validation and out-of-memory errors are caught with error scopes and
 * raised as exceptions that name the kernel and shapes; a lost device raises
 * {@link GpuDeviceLostError} instead of hanging.
 *
 * @example
 * ```ts
 * import { requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const x = gpu.upload("x", new Float32Array([1, 2, 3]), [3]);
 * assert.deepEqual(await gpu.read(x), new Float32Array([1, 2, 3]));
 * gpu.destroy();
 * ```
 *
 * @module
 */

import {
  GpuDeviceLostError,
  GpuLimitError,
  GpuOutOfMemoryError,
  GpuValidationError,
  NoAdapterError,
  ShapeError,
} from "./errors.ts";
import { KernelCache } from "./kernel.ts";
import {
  type DType,
  DTYPE_BYTES,
  dtypeOf,
  type HostArray,
  hostArray,
  numel,
  roundUp,
  Tensor,
  type TensorSpec,
} from "./tensor.ts";

/** Options of {@link requestGpu}. */
export interface GpuOptions {
  /** Adapter preference. @default {"high-performance"} */
  powerPreference?: GPUPowerPreference;
  /** Enable `shader-f16` when the adapter offers it. @default {true} */
  f16?: boolean;
  /**
   * Subgroup reductions. Unset (auto): the `subgroups` feature is requested (Deno 2.9 grants it
   * where wgpu supports it without listing it in `adapter.features`) and, when granted and a
   * probe kernel compiles, the norms, softmaxes, losses and L2 norms reduce with
   * `subgroupAdd`/`subgroupMax`; otherwise with workgroup-memory trees. `false` (or the
   * environment variable `ADEPT_SUBGROUPS=0`) forces the trees; `true` (or
   * `ADEPT_SUBGROUPS=1`) refuses a device without subgroups. Both paths are deterministic run
   * to run; they differ from each other in the last bits of sums (see {@link Gpu.subgroups}).
   * @default {undefined}
   */
  subgroups?: boolean;
  /**
   * Where the adapter description is logged; `false` for silence.
   * @default {console.error}
   */
  log?: ((line: string) => void) | false;
  /**
   * Refuse software adapters (llvmpipe/lavapipe, SwiftShader): use on machines that must run
   * on a real GPU. Also enabled by the environment variable `ADEPT_REQUIRE_HARDWARE_GPU=1`.
   * @default {false}
   */
  requireHardware?: boolean;
}

/** What the adapter says about itself. */
export interface AdapterSummary {
  /** Driver/device description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** Vendor name or PCI id. */
  vendor: string;
  /** Architecture, when reported. */
  architecture: string;
  /** Enabled device features. */
  features: string[];
  /** True for CPU implementations such as Mesa's lavapipe. */
  software: boolean;
  /**
   * The adapter's range of subgroup sizes (`subgroupMinSize`, `subgroupMaxSize` of its info),
   * when reported. WGSL guarantees only a power of two in [4, 128].
   */
  subgroupSizes?: [number, number];
}

/** Limits the kernels need; each is requested up to the adapter's maximum. */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
] as const;

/** Alignment of every tensor view (satisfies storage-offset and copy alignment everywhere). */
export const VIEW_ALIGNMENT = 256;

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * Acquires a headless WebGPU device with the limits and features the kernels need.
 *
 * @throws {NoAdapterError} when no adapter exists, with instructions to get one.
 */
export async function requestGpu(options: GpuOptions = {}): Promise<Gpu> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new NoAdapterError("navigator.gpu is not available in this runtime");
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) throw new NoAdapterError("requestAdapter() returned null");
  const info = adapter.info;
  const description = info.description || info.device || "unknown adapter";
  const software = /llvmpipe|lavapipe|swiftshader|software/i.test(
    `${description} ${info.device} ${info.architecture}`,
  );
  const requireHardware = options.requireHardware ?? readEnv("ADEPT_REQUIRE_HARDWARE_GPU") === "1";
  if (requireHardware && software) {
    throw new NoAdapterError(
      `only the software adapter "${description}" was found, and a hardware GPU is required; ` +
        "check that the GPU's Vulkan ICD is installed and visible (VK_DRIVER_FILES)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") requiredLimits[k] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if ((options.f16 ?? true) && adapter.features.has("shader-f16")) {
    requiredFeatures.push("shader-f16");
  }
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const sgEnv = readEnv("ADEPT_SUBGROUPS");
  const sgWanted = options.subgroups ??
    (sgEnv === "0" ? false : sgEnv === "1" ? true : undefined);
  const sgSource = options.subgroups !== undefined
    ? `subgroups: ${options.subgroups}`
    : `ADEPT_SUBGROUPS=${sgEnv}`;
  let device: GPUDevice | undefined;
  let sgWhy = sgWanted === false ? `disabled by ${sgSource}` : "";
  if (sgWanted !== false) {
    // Not in adapter.features under Deno 2.9 even where wgpu supports it: ask, and fall back
    // when the request is refused (a TypeError, before the adapter is consumed).
    try {
      device = await adapter.requestDevice({
        requiredLimits,
        requiredFeatures: [...requiredFeatures, "subgroups" as GPUFeatureName],
      });
    } catch (e) {
      sgWhy = `the device refused the feature: ${(e as Error).message}`;
    }
  }
  const refuse = () =>
    new GpuLimitError(
      `subgroup reductions were required (${sgSource}) but are unavailable on ` +
        `"${description}": ${sgWhy}; unset it to fall back to workgroup-memory reductions`,
    );
  if (sgWanted === true && !device) throw refuse();
  device ??= await adapter.requestDevice({ requiredLimits, requiredFeatures });
  let subgroups: { directive: boolean } | undefined;
  if (device.features.has("subgroups")) {
    const probe = await probeSubgroups(device);
    if (typeof probe === "string") sgWhy = probe;
    else subgroups = probe;
  }
  if (sgWanted === true && !subgroups) {
    device.destroy();
    throw refuse();
  }
  const infoSizes = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  const summary: AdapterSummary = {
    description,
    vendor: String(info.vendor ?? ""),
    architecture: String(info.architecture ?? ""),
    features: [...device.features].map(String).sort(),
    software,
  };
  if (typeof infoSizes.subgroupMinSize === "number" && infoSizes.subgroupMinSize > 0) {
    summary.subgroupSizes = [infoSizes.subgroupMinSize, infoSizes.subgroupMaxSize ?? 0];
  }
  const log = options.log === undefined ? (l: string) => console.error(l) : options.log;
  if (log) {
    log(
      `[gpu] adapter: ${summary.description} (vendor ${summary.vendor || "?"}` +
        `${summary.architecture ? `, ${summary.architecture}` : ""}${
          software ? ", software" : ""
        }); features: ${summary.features.join(",") || "none"}`,
    );
    const sizes = summary.subgroupSizes
      ? `subgroup size ${summary.subgroupSizes[0]}-${summary.subgroupSizes[1]}`
      : "subgroup size not reported";
    log(
      subgroups
        ? `[gpu] reductions: subgroups (subgroupAdd/subgroupMax, ${sizes}${
          subgroups.directive ? "" : ", without the enable directive"
        })`
        : `[gpu] reductions: workgroup-memory trees (no subgroups: ${sgWhy})`,
    );
  }
  return new Gpu(device, summary, { subgroups });
}

/** The subgroup built-ins and functions the reduction snippets of `kernels/include/` use. */
const SUBGROUP_PROBE = `struct Ids {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(ids: Ids) {
  let lead = subgroupMin(ids.t) == ids.t;
  out[ids.t] = subgroupMax(subgroupAdd(f32(ids.subgroup + ids.subgroups))) + select(0.0, 1.0, lead);
}
`;

/**
 * Compiles a kernel using the subgroup built-ins the reductions use, with `enable subgroups;`
 * and then without. Returns how the variants must be compiled, or why they cannot be.
 */
async function probeSubgroups(device: GPUDevice): Promise<{ directive: boolean } | string> {
  const errors: string[] = [];
  for (const directive of [true, false]) {
    device.pushErrorScope("validation");
    const module = device.createShaderModule({
      label: "subgroups probe",
      code: (directive ? "enable subgroups;\n" : "") + SUBGROUP_PROBE,
    });
    device.createComputePipeline({
      label: "subgroups probe",
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    const error = await device.popErrorScope();
    if (!error) return { directive };
    errors.push(error.message.trim().split("\n").find((l) => l.trim()) ?? "unknown error");
  }
  return `the feature was granted but a subgroup kernel does not compile: ${errors.join("; ")}`;
}

/** Anything that records dispatches into a compute pass (an `Op` of `op.ts`). */
export interface Recordable {
  /** Name and shapes, for error messages. */
  readonly label: string;
  /** Records the dispatches into `pass`. */
  record(pass: GPUComputePassEncoder): void;
}

interface Pending {
  context: string;
  errors: Promise<(GPUError | null)[]>;
}

/** A named set of tensors allocated once in as few buffers as the device allows. */
export interface Arena<K extends string = string> {
  /** Arena name (prefix of tensor names). */
  readonly name: string;
  /** The tensors, by name. */
  readonly tensors: Readonly<Record<K, Tensor>>;
  /** The buffers backing the tensors. */
  readonly buffers: readonly GPUBuffer[];
  /** Total bytes allocated. */
  readonly byteLength: number;
}

/** Bytes needed by an arena of `specs` (with view alignment), without allocating. */
export function arenaBytes(specs: Record<string, TensorSpec>): number {
  let total = 0;
  for (const s of Object.values(specs)) {
    total += roundUp(Math.max(4, numel(s.shape) * DTYPE_BYTES[s.dtype ?? "f32"]), VIEW_ALIGNMENT);
  }
  return total;
}

/** One buffer of an arena plan: its size and the byte offset of each tensor in it. */
export interface ArenaChunk<K extends string = string> {
  /** Buffer size in bytes (a multiple of 4). */
  size: number;
  /** Tensor name and byte offset (a multiple of {@link VIEW_ALIGNMENT}). */
  items: [K, number][];
}

/**
 * Packs tensors into as few buffers of at most `maxBufferSize` bytes as declaration order
 * allows, each view aligned to {@link VIEW_ALIGNMENT}.
 *
 * @throws {GpuLimitError} when one tensor alone exceeds `maxBufferSize`.
 */
export function planArena<K extends string>(
  name: string,
  specs: Record<K, TensorSpec>,
  maxBufferSize: number,
): ArenaChunk<K>[] {
  const chunks: ArenaChunk<K>[] = [];
  let chunk: ArenaChunk<K> | undefined;
  for (const key of Object.keys(specs) as K[]) {
    const s = specs[key];
    const dtype = s.dtype ?? "f32";
    const bytes = roundUp(Math.max(4, numel(s.shape) * DTYPE_BYTES[dtype]), 4);
    if (bytes > maxBufferSize) {
      throw new GpuLimitError(
        `tensor ${name}.${key} (${s.shape.join("x")} ${dtype}) needs ${bytes} bytes, more than ` +
          `the device's maxBufferSize of ${maxBufferSize} bytes`,
      );
    }
    let off = chunk ? roundUp(chunk.size, VIEW_ALIGNMENT) : 0;
    if (!chunk || off + bytes > maxBufferSize) {
      chunk = { size: 0, items: [] };
      chunks.push(chunk);
      off = 0;
    }
    chunk.items.push([key, off]);
    chunk.size = off + bytes;
  }
  return chunks;
}

/** One WebGPU device and everything allocated on it. */
export class Gpu {
  /** Compiled kernels of this device. */
  readonly kernels: KernelCache;
  #lost: { reason: string; message: string } | null = null;
  #lostPromise: Promise<never>;
  #pending: Pending[] = [];
  #uncaptured: GPUError[] = [];
  #allocated = 0;
  #staging = new Map<number, GPUBuffer[]>();
  #placeholder?: Tensor;
  #sink?: Tensor;

  /**
   * Refuse to build a dispatch whose bindings give overlapping ranges of one buffer to a
   * writable binding and another binding (WebGPU forbids such aliasing; Deno's wgpu does not
   * check it yet, Chrome's Dawn does). Enabled by `ADEPT_STRICT_ALIASING=1`. In-place launches
   * (`out` = `x`) break the rule and are refused when this is on.
   */
  strictAliasing: boolean = readEnv("ADEPT_STRICT_ALIASING") === "1";

  #sgSupport: { directive: boolean } | undefined;
  #subgroups: boolean;

  constructor(
    /** The WebGPU device. */
    readonly device: GPUDevice,
    /** What the adapter reported. */
    readonly adapter: AdapterSummary,
    /**
     * `subgroups`: how subgroup variants compile on this device, from {@link requestGpu}'s
     * probe (`directive`: whether `enable subgroups;` heads them). Without it, or without the
     * device feature, the kernels use workgroup-memory reductions only.
     */
    options: { subgroups?: { directive: boolean } } = {},
  ) {
    this.#sgSupport = device.features.has("subgroups") ? options.subgroups : undefined;
    this.#subgroups = this.#sgSupport !== undefined;
    this.kernels = new KernelCache(this);
    this.#lostPromise = device.lost.then((info) => {
      this.#lost = info;
      throw new GpuDeviceLostError(info.reason, info.message);
    });
    this.#lostPromise.catch(() => {}); // observed through #guard and assertAlive
    device.addEventListener("uncapturederror", (e) => {
      this.#uncaptured.push((e as GPUUncapturedErrorEvent).error);
    });
  }

  /**
   * A small tensor of its own buffer, bound where a kernel's optional input is absent (a bias, a
   * mask): it never aliases another binding.
   */
  get placeholder(): Tensor {
    this.#placeholder ??= this.tensor("placeholder", [4]);
    return this.#placeholder;
  }

  /**
   * A small tensor of its own buffer, bound where a kernel's optional OUTPUT is not wanted
   * (apart from {@link Gpu.placeholder}, so that an unused output never aliases unused inputs).
   */
  get sink(): Tensor {
    this.#sink ??= this.tensor("sink", [4]);
    return this.#sink;
  }

  /** Whether the `shader-f16` feature is enabled. */
  get hasF16(): boolean {
    return this.device.features.has("shader-f16");
  }

  /** Whether the device has the `subgroups` feature and subgroup kernels compile on it. */
  get hasSubgroups(): boolean {
    return this.#sgSupport !== undefined;
  }

  /**
   * Whether kernels with a subgroup variant (the row reductions of the norms, softmaxes,
   * cross-entropy and L2 norms; `kernels/README.md`) compile it: true by default where
   * {@link Gpu.hasSubgroups}. Settable, to compare the two paths on one device; ops built
   * earlier keep their pipelines. Each path is deterministic run to run (a subgroup's order of
   * addition is fixed by the hardware for a given pipeline); the two differ in the last bits of
   * sums, maxima being exact in both.
   *
   * @example
   * ```ts
   * import { requestGpu } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const gpu = await requestGpu({ log: false });
   * assert.equal(gpu.subgroups, gpu.hasSubgroups);
   * gpu.subgroups = false; // the workgroup-memory trees from here on
   * assert.equal(gpu.subgroups, false);
   * gpu.destroy();
   * ```
   */
  get subgroups(): boolean {
    return this.#subgroups;
  }

  set subgroups(on: boolean) {
    if (on && !this.#sgSupport) {
      throw new GpuLimitError(
        "subgroup reductions need the subgroups feature, which this device " +
          `("${this.adapter.description}") does not have; see requestGpu's subgroups option`,
      );
    }
    this.#subgroups = on;
  }

  /**
   * Whether subgroup variants start with `enable subgroups;` (read by the kernel cache): WGSL
   * requires the directive, the naga of Deno 2.9 rejects it as not yet implemented and accepts
   * subgroup built-ins without it. {@link requestGpu} decides by compiling a probe both ways.
   */
  get subgroupsDirective(): boolean {
    return this.#sgSupport?.directive ?? true;
  }

  /** Bytes currently allocated through this object. */
  get allocatedBytes(): number {
    return this.#allocated;
  }

  /** Device limits in effect. */
  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Throws {@link GpuDeviceLostError} if the device was lost. */
  assertAlive(): void {
    if (this.#lost) throw new GpuDeviceLostError(this.#lost.reason, this.#lost.message);
  }

  /** Awaits `p`, or throws {@link GpuDeviceLostError} as soon as the device is lost. */
  async #guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await Promise.race([p, this.#lostPromise]);
    } catch (e) {
      if (e instanceof GpuDeviceLostError) throw e;
      // An operation can fail just before the loss is reported: give the report a moment so
      // the caller sees the real cause rather than a generic validation error.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#lostPromise.catch(() => {}),
        new Promise((r) => timer = setTimeout(r, 50)),
      ]);
      clearTimeout(timer);
      this.assertAlive();
      throw e;
    }
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes. Errors are collected and
   * raised by the next {@link Gpu.flush} (called by `run`, `read` and `sync`) with `context`.
   */
  checked<T>(context: string, fn: () => T): T {
    this.assertAlive();
    const d = this.device;
    d.pushErrorScope("out-of-memory");
    d.pushErrorScope("validation");
    let result: T;
    try {
      result = fn();
    } finally {
      const v = d.popErrorScope();
      const o = d.popErrorScope();
      this.#pending.push({ context, errors: Promise.all([v, o]) });
    }
    return result;
  }

  /** Raises the first error caught since the last flush, naming where it happened. */
  async flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) {
      const [v, o] = await this.#guard(p.errors);
      if (o) throw new GpuOutOfMemoryError(p.context, o.message);
      if (v) throw new GpuValidationError(p.context, v.message);
    }
    const u = this.#uncaptured.shift();
    if (u) {
      this.#uncaptured = [];
      throw new GpuValidationError("an unscoped GPU call", u.message);
    }
    this.assertAlive();
  }

  /** Allocates a raw buffer, checking the size against `maxBufferSize`. */
  allocBuffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const max = this.device.limits.maxBufferSize;
    if (size > max) {
      throw new GpuLimitError(
        `buffer ${label} needs ${size} bytes, more than the device's maxBufferSize of ${max} ` +
          "bytes; use a smaller batch or sequence length",
      );
    }
    const buffer = this.checked(
      `allocating ${label} (${size} bytes)`,
      () => this.device.createBuffer({ label, size: roundUp(Math.max(size, 4), 4), usage }),
    );
    this.#allocated += buffer.size;
    return buffer;
  }

  /** Frees a buffer made by {@link Gpu.allocBuffer}. */
  freeBuffer(buffer: GPUBuffer): void {
    this.#allocated -= buffer.size;
    buffer.destroy();
  }

  /**
   * A standalone tensor, zero-filled, optionally uploaded from `data`.
   *
   * @example
   * ```ts
   * import { requestGpu } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const gpu = await requestGpu({ log: false });
   * const w = gpu.tensor("w", [768, 19]);
   * assert.equal(w.describe(), "w(768, 19) f32");
   * assert.ok((await gpu.read(w)).every((v) => v === 0));
   * const ids = gpu.tensor("ids", [2], "i32", Int32Array.of(5, 7));
   * assert.deepEqual(await gpu.read(ids), Int32Array.of(5, 7));
   * gpu.destroy();
   * ```
   */
  tensor(name: string, shape: readonly number[], dtype: DType = "f32", data?: HostArray): Tensor {
    this.#checkDtype(dtype, name);
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    const buffer = this.allocBuffer(
      name,
      roundUp(Math.max(bytes, 4), 4),
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    );
    const t = new Tensor(buffer, 0, shape, dtype, name);
    if (data) this.write(t, data);
    return t;
  }

  /** A tensor of `shape` holding `data`; the dtype follows the typed array. */
  upload(name: string, data: HostArray, shape: readonly number[] = [data.length]): Tensor {
    const dtype = dtypeOf(data);
    if (!dtype) throw new ShapeError(`upload of ${name}: unsupported array type`);
    return this.tensor(name, shape, dtype, data);
  }

  /**
   * Allocates all `specs` at once and hands out named views. Tensors are packed into buffers
   * of at most `maxBufferSize` bytes, each view aligned to {@link VIEW_ALIGNMENT} bytes.
   *
   * @example
   * ```ts
   * import { requestGpu, VIEW_ALIGNMENT } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const gpu = await requestGpu({ log: false });
   * const acts = gpu.arena("acts", {
   *   x: { shape: [2, 3, 4] },
   *   ids: { shape: [2, 3], dtype: "i32" },
   * });
   * assert.equal(acts.tensors.x.describe(), "acts.x(2, 3, 4) f32");
   * assert.equal(acts.tensors.ids.buffer, acts.tensors.x.buffer); // one allocation
   * assert.equal(acts.tensors.ids.offset % VIEW_ALIGNMENT, 0);
   * gpu.freeArena(acts);
   * gpu.destroy();
   * ```
   */
  arena<K extends string>(name: string, specs: Record<K, TensorSpec>): Arena<K> {
    for (const [key, s] of Object.entries(specs) as [K, TensorSpec][]) {
      this.#checkDtype(s.dtype ?? "f32", `${name}.${key}`);
    }
    const plan = planArena(name, specs, this.device.limits.maxBufferSize);
    const tensors = {} as Record<K, Tensor>;
    const buffers: GPUBuffer[] = [];
    let total = 0;
    plan.forEach((chunk, i) => {
      const buffer = this.allocBuffer(
        plan.length > 1 ? `${name}[${i}]` : name,
        chunk.size,
        GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      );
      buffers.push(buffer);
      total += buffer.size;
      for (const [key, off] of chunk.items) {
        const s = specs[key];
        tensors[key] = new Tensor(buffer, off, s.shape, s.dtype ?? "f32", `${name}.${key}`);
      }
    });
    return { name, tensors, buffers, byteLength: total };
  }

  /** Frees every buffer of an arena. */
  freeArena(arena: Arena): void {
    for (const b of arena.buffers) this.freeBuffer(b);
  }

  #checkDtype(dtype: DType, name: string): void {
    if (!(dtype in DTYPE_BYTES)) throw new ShapeError(`tensor ${name}: unknown dtype "${dtype}"`);
    if (dtype === "f16" && !this.hasF16) {
      throw new ShapeError(
        `tensor ${name}: dtype f16 needs the adapter feature shader-f16, which this adapter ` +
          `("${this.adapter.description}") does not offer; use f32`,
      );
    }
  }

  /**
   * Uploads `data` (same dtype and element count) into `t`. WebGPU writes whole 4-byte words:
   * an f16 tensor of odd length is written with 2 bytes of zeros past its end, which standalone
   * tensors and arena views own (views are 256-byte aligned) but a `viewOf` a larger f16 tensor
   * does not.
   */
  write(t: Tensor, data: HostArray): void {
    this.assertAlive();
    const dtype = dtypeOf(data);
    if (dtype !== t.dtype || data.length !== t.size) {
      throw new ShapeError(
        `write to ${t.describe()}: got ${data.length} elements of ${dtype ?? "an unknown type"}, ` +
          `expected ${t.size} of ${t.dtype}`,
      );
    }
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength === 0) return; // an empty write would abort Deno's WebGPU queue
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(t.buffer, t.offset, bytes);
    } else {
      const padded = new Uint8Array(roundUp(bytes.byteLength, 4));
      padded.set(bytes);
      this.device.queue.writeBuffer(t.buffer, t.offset, padded);
    }
  }

  /** Fills `t` with zeros. */
  zero(t: Tensor): void {
    this.write(t, hostArray(t.dtype, t.size));
  }

  /**
   * Records `ops` into one compute pass, submits once, and raises any validation or
   * out-of-memory error with the labels of the ops involved.
   */
  async run(ops: Recordable | readonly Recordable[], label = "step"): Promise<void> {
    await this.flush();
    const list = Array.isArray(ops) ? ops as readonly Recordable[] : [ops as Recordable];
    const labels = list.length <= 6
      ? list.map((o) => o.label).join("; ")
      : `${list.slice(0, 6).map((o) => o.label).join("; ")}; … (${list.length} ops)`;
    this.checked(`${label} [${labels}]`, () => {
      const enc = this.device.createCommandEncoder({ label });
      const pass = enc.beginComputePass({ label });
      for (const op of list) op.record(pass);
      pass.end();
      this.device.queue.submit([enc.finish()]);
    });
    await this.flush();
  }

  /** Whether the device measures GPU time ({@link Gpu.profile}). */
  get hasTimestamps(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * GPU time of each group of ops, in milliseconds: every group is recorded as its own compute
   * pass with timestamp writes at its start and end, all in one submit. Returns `undefined`
   * when the adapter has no `timestamp-query`. Separate passes cost a little more than one pass,
   * so the sum slightly exceeds a step's time in {@link Gpu.run}.
   */
  async profile(
    groups: readonly { label: string; ops: readonly Recordable[] }[],
  ): Promise<number[] | undefined> {
    if (!this.hasTimestamps) return undefined;
    await this.flush();
    const out: number[] = [];
    const perSet = 2048; // groups per query set (4096 timestamps, WebGPU's maximum count)
    for (let start = 0; start < groups.length; start += perSet) {
      const chunk = groups.slice(start, start + perSet);
      const n = 2 * chunk.length;
      const bytes = n * 8;
      const querySet = this.checked(
        "profile: query set",
        () => this.device.createQuerySet({ type: "timestamp", count: n }),
      );
      const resolve = this.allocBuffer(
        "profile.resolve",
        bytes,
        GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      );
      const staging = this.allocBuffer(
        "profile.read",
        bytes,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      );
      try {
        this.checked(`profile [${chunk.map((g) => g.label).slice(0, 6).join("; ")}]`, () => {
          const enc = this.device.createCommandEncoder({ label: "profile" });
          chunk.forEach((g, i) => {
            const pass = enc.beginComputePass({
              label: g.label,
              timestampWrites: {
                querySet,
                beginningOfPassWriteIndex: 2 * i,
                endOfPassWriteIndex: 2 * i + 1,
              },
            });
            for (const op of g.ops) op.record(pass);
            pass.end();
          });
          enc.resolveQuerySet(querySet, 0, n, resolve, 0);
          enc.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
          this.device.queue.submit([enc.finish()]);
        });
        await this.flush();
        await this.#guard(staging.mapAsync(GPUMapMode.READ));
        const t = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.unmap();
        for (let i = 0; i < chunk.length; i++) {
          const d = t[2 * i + 1] - t[2 * i];
          out.push(d > 0n ? Number(d) / 1e6 : 0);
        }
      } finally {
        this.freeBuffer(resolve);
        this.freeBuffer(staging);
        querySet.destroy();
      }
    }
    return out;
  }

  /** Waits until the queue is idle (raises on a lost device instead of hanging). */
  async sync(): Promise<void> {
    await this.flush();
    await this.#guard(this.device.queue.onSubmittedWorkDone());
    this.assertAlive();
  }

  /** Copies `t` back to the host. Costs at least one queue round trip (~10 ms in Deno). */
  async read<D extends DType>(t: Tensor & { dtype: D }): Promise<HostArray<D>>;
  async read(t: Tensor): Promise<HostArray>;
  async read(t: Tensor): Promise<HostArray> {
    await this.flush();
    const size = t.bindingSize;
    const pool = this.#staging.get(size) ?? [];
    const staging = pool.pop() ??
      this.allocBuffer(`staging(${size})`, size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      this.checked(`reading ${t.describe()}`, () => {
        const enc = this.device.createCommandEncoder({ label: `read ${t.name}` });
        enc.copyBufferToBuffer(t.buffer, t.offset, staging, 0, size);
        this.device.queue.submit([enc.finish()]);
      });
      await this.flush();
      await this.#guard(staging.mapAsync(GPUMapMode.READ));
    } catch (e) {
      pool.push(staging); // unmapped: reusable (or dead with the device)
      this.#staging.set(size, pool);
      throw e;
    }
    const out = hostArray(t.dtype, t.size);
    new Uint8Array(out.buffer).set(
      new Uint8Array(staging.getMappedRange(0, size), 0, t.byteLength),
    );
    staging.unmap();
    pool.push(staging);
    this.#staging.set(size, pool);
    return out;
  }

  /** Reads a tensor as a Float64Array (any numeric dtype), for comparisons. */
  async readF64(t: Tensor): Promise<Float64Array> {
    return Float64Array.from(await this.read(t) as ArrayLike<number>, Number);
  }

  /** Releases the device. Further calls raise {@link GpuDeviceLostError}. */
  destroy(): void {
    this.#lost ??= { reason: "destroyed", message: "Gpu.destroy() was called" };
    this.device.destroy();
  }
}

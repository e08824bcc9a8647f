/**
 * Error types raised by the GPU runtime and the kernel launchers.
 *
 * Every error says what was wrong and quotes the offending value, so a user can act on it
 * without reading the source.
 *
 * @module
 */

/** Formats a shape as `(2, 3, 4)` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `(${shape.join(", ")})`;
}

/** No WebGPU adapter could be found: the machine has no usable GPU driver. */
export class NoAdapterError extends Error {
  constructor(detail = "") {
    super(
      "No WebGPU adapter was found" + (detail ? ` (${detail})` : "") + ". " +
        "Install a Vulkan driver for your GPU (NVIDIA: the proprietary driver plus libvulkan1), " +
        "or, on a CPU-only Debian/Ubuntu machine, Mesa's software Vulkan driver: " +
        "`sudo apt-get install -y mesa-vulkan-drivers`.",
    );
    this.name = "NoAdapterError";
  }
}

/** The GPU device was lost (driver reset, `destroy()`, or a failed pipeline). */
export class GpuDeviceLostError extends Error {
  constructor(reason: string, message: string) {
    super(
      `The GPU device was lost (reason: ${reason || "unknown"}): ${message || "no message"}. ` +
        "No further GPU work can run in this process; restart from the last checkpoint.",
    );
    this.name = "GpuDeviceLostError";
  }
}

/** A WebGPU validation error caught by an error scope, attributed to the kernels involved. */
export class GpuValidationError extends Error {
  constructor(where: string, message: string) {
    super(`WebGPU validation failed in ${where}: ${message}`);
    this.name = "GpuValidationError";
  }
}

/** The device ran out of memory while allocating or running `where`. */
export class GpuOutOfMemoryError extends Error {
  constructor(where: string, message: string) {
    super(
      `The GPU ran out of memory in ${where}: ${message}. ` +
        "Use a smaller batch size or sequence length.",
    );
    this.name = "GpuOutOfMemoryError";
  }
}

/** A launcher received tensors whose shapes or dtypes do not fit the operation. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** A tensor or binding exceeds a limit of the device. */
export class GpuLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuLimitError";
  }
}

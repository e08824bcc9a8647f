/**
 * The worker of `decodeParquetInWorker` (parquet.ts): decodes one file and replies once. A
 * promise the decoder leaves rejected is kept here (`preventDefault`) instead of ending the
 * process; the worker is terminated after its reply.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { decodeForWorker, ParquetProblem } from "./parquet.ts";

interface Request {
  buffer: ArrayBuffer;
  columns?: string[];
  unchecked: boolean;
  strayRejection: boolean;
}

self.addEventListener("unhandledrejection", (e) => e.preventDefault());

self.onmessage = async (m: MessageEvent<Request>) => {
  const { buffer, columns, unchecked, strayRejection } = m.data;
  if (strayRejection) Promise.reject(new Error("a promise the decoder left behind"));
  try {
    const { names, rows } = await decodeForWorker(buffer, columns, unchecked);
    self.postMessage({ ok: true, names, rows });
  } catch (e) {
    self.postMessage({
      ok: false,
      message: e instanceof Error ? e.message : String(e),
      row: e instanceof ParquetProblem ? e.row : undefined,
    });
  }
};

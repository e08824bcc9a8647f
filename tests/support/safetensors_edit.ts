/**
 * Editing a safetensors file in the tests: read every tensor and the metadata, change some, write
 * the file back (the tokenized-cache tests corrupt an index this way).
 *
 * @module
 */

import { openSafetensors, type TensorToWrite, writeSafetensors } from "../../src/io/safetensors.ts";

/**
 * Rewrites a safetensors file with some tensors or metadata changed.
 *
 * @param path The file.
 * @param change Edits the tensors (by name) and the metadata in place.
 */
export async function rewriteSafetensors(
  path: string,
  change: (tensors: Map<string, TensorToWrite>, metadata: Record<string, string>) => void,
): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  let metadata: Record<string, string>;
  {
    using st = await openSafetensors(path);
    metadata = { ...st.metadata };
    for (const n of st.names()) {
      const t = await st.read(n);
      tensors.set(n, { dtype: t.dtype, shape: t.shape, data: t.data });
    }
  }
  change(tensors, metadata);
  await writeSafetensors(path, tensors, { metadata });
}

/**
 * Temporary folders for tests.
 *
 * @module
 */

/**
 * Runs `fn` with a fresh temporary folder and removes the folder afterwards, whether `fn`
 * succeeds or throws.
 *
 * @param fn The test body; it gets the folder's path.
 * @param prefix The folder name's prefix, to tell which test left one behind.
 */
export async function withTempDir(
  fn: (dir: string) => Promise<void>,
  prefix = "adept_test_",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

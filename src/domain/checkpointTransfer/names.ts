// Which file names a transferred checkpoint may hold.
import { META_FILE } from "../imageStore.js";

/**
 * CRIU's images and logs have plain names; anything with a directory, "..", a leading dot (the
 * store's own temporary entries) or the store's metadata file is refused.
 */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isTransferableName(name: string): boolean {
  return NAME_PATTERN.test(name) && name !== META_FILE;
}

// What client commands print: a line for people, or the answer as proto3 JSON with --json.

/** A generated message type: ts-proto's toJSON writes proto3 JSON (enum names, RFC 3339 times). */
export interface JsonMessageType<T> {
  toJSON(message: T): unknown;
}

/**
 * The one conversion of an API message to JSON for the command line: proto3 JSON, as every other
 * gRPC tool prints it. Fields at their default value (0, false, "") are left out, as proto3 JSON does.
 */
export function protoJson<T>(type: JsonMessageType<T>, message: T): unknown {
  return type.toJSON(message);
}

/** Prints `human`, or with --json the JSON `json()` makes (only then is it made). */
export function print(json: boolean | undefined, human: string, data: () => unknown): void {
  process.stdout.write(json ? `${JSON.stringify(data(), null, 2)}\n` : `${human}\n`);
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Rows of cells as aligned columns, the last column unpadded. */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

// Imports point inward, as the README's Architecture section draws the rooms: the CRIU side knows
// no one; the domain knows the CRIU side; authorization knows the domain; the gRPC side knows the
// domain and authorization but never the CRIU side; only the composition root (src/app) and the
// CLI know the composition root. Observability (metrics, traces) reads the domain's events and is
// used by every room. Every file under src/ is read, so a new file cannot slip past.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { packageRoot } from "../../src/packageRoot.js";

const SRC = join(packageRoot, "src");

type Room = "criu" | "domain" | "auth" | "grpc" | "app" | "cli" | "observability" | "shared";

/** Which rooms each room must not import. */
const FORBIDDEN: Record<Room, readonly Room[]> = {
  criu: ["domain", "auth", "grpc", "app", "cli"],
  domain: ["auth", "grpc", "app", "cli"],
  auth: ["grpc", "app", "cli"],
  grpc: ["criu", "app", "cli"],
  app: ["cli"],
  cli: [],
  observability: ["criu", "auth", "grpc", "app", "cli"],
  // config.ts, log.ts, packageRoot.ts: used by every room, so they import none.
  shared: ["criu", "domain", "auth", "grpc", "app", "cli"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

function roomOf(path: string): Room | "outside" {
  const rel = relative(SRC, path);
  if (rel.startsWith("..")) return "outside";
  const top = rel.split("/")[0] ?? "";
  return (
    (["criu", "domain", "auth", "grpc", "app", "cli", "observability"] as const).find((r) => r === top) ??
    "shared"
  );
}

/** The relative module specifiers a file imports or re-exports, statically or dynamically. */
function importsOf(text: string): string[] {
  const specifiers: string[] = [];
  const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
  for (const match of text.matchAll(pattern)) specifiers.push(match[1] as string);
  return specifiers;
}

const edges = sourceFiles(SRC).flatMap((file) =>
  importsOf(readFileSync(file, "utf8")).map((specifier) => ({
    file: relative(packageRoot, file),
    from: roomOf(file),
    to: roomOf(resolve(dirname(file), specifier)),
    specifier,
  })),
);

describe("import directions in src/", () => {
  test("the scan sees the imports that are there", () => {
    // If the pattern stopped matching, every rule below would pass on nothing.
    expect(edges.length).toBeGreaterThan(100);
    expect(edges).toContainEqual(expect.objectContaining({ from: "app", to: "grpc" }));
    expect(edges).toContainEqual(expect.objectContaining({ from: "domain", to: "criu" }));
    expect(edges).toContainEqual(expect.objectContaining({ from: "grpc", to: "auth" }));
  });

  test("no room imports one it must not", () => {
    const wrong = edges
      .filter((e) => e.from !== "outside" && e.to !== "outside")
      .filter((e) => FORBIDDEN[e.from as Room].includes(e.to as Room))
      .map((e) => `${e.file} (${e.from}) imports ${e.specifier} (${e.to})`);
    expect(wrong).toEqual([]);
  });

  test("nothing outside the composition root and the CLI imports src/app", () => {
    const wrong = edges
      .filter((e) => e.to === "app" && e.from !== "app" && e.from !== "cli")
      .map((e) => `${e.file} imports ${e.specifier}`);
    expect(wrong).toEqual([]);
  });
});

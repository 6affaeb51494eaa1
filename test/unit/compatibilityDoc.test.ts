// docs/compatibility.md keys every claim of its workload matrix to a test by file and title. These
// tests hold it to them: a title that no longer exists, or a matrix row naming no test, fails here.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";

const doc = readFileSync(new URL("../../docs/compatibility.md", import.meta.url), "utf8");

// Where a test file named by its base name may be.
const TEST_DIRS = ["../integration/workloads/", "../integration/"];

/** Every `file.test.ts`: "title"; "title" reference in the document, whitespace and \| undone. */
function references(text: string): { file: string; title: string }[] {
  const out: { file: string; title: string }[] = [];
  for (const m of text.matchAll(/`([\w.]+\.test\.ts)`: ((?:"[^"]+"(?:;\s*)?)+)/g)) {
    for (const t of (m[2] ?? "").matchAll(/"([^"]+)"/g)) {
      out.push({ file: m[1] ?? "", title: (t[1] ?? "").replace(/\s+/g, " ").replaceAll("\\|", "|") });
    }
  }
  return out;
}

function testSource(file: string): string | undefined {
  for (const dir of TEST_DIRS) {
    const url = new URL(`${dir}${file}`, import.meta.url);
    if (existsSync(url)) return readFileSync(url, "utf8");
  }
  return undefined;
}

describe("docs/compatibility.md", () => {
  const refs = references(doc);

  test("names tests, and every one it names exists with that title", () => {
    expect(refs.length).toBeGreaterThan(10);
    const missing = refs.filter(({ file, title }) => !testSource(file)?.includes(`"${title}"`));
    expect(missing).toEqual([]);
  });

  test("every row of the matrix names at least one test", () => {
    const section = doc.slice(
      doc.indexOf("## The matrix"),
      doc.indexOf("\n## ", doc.indexOf("## The matrix") + 1),
    );
    const rows = section
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| Workload") && !/^\| -/.test(l));
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((row) => references(row).length === 0)).toEqual([]);
  });
});

// `npm run bench`: the side-by-side benchmark, run once as a single long test that prints figures.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["bench/sideBySide.ts"],
    pool: "forks",
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
  },
});

import { defineConfig } from "vite";

// The client is static files: index.html, one hashed script and one stylesheet. `base: "./"`
// lets the same build be hosted under any path (the local stack serves it at `/`).
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
});

import { defineConfig } from "vite";

// The client is static files: index.html, one hashed script and one stylesheet. `base: "./"`
// lets the same build be hosted under any path (the local stack serves it at `/`).
// `npx vite` (a dev server with reload) forwards the API's paths to a running `make dev`
// (CASHEW_API, default http://127.0.0.1:3000), so the page and the API share an origin.
const api = process.env.CASHEW_API ?? "http://127.0.0.1:3000";
const forwarded = ["/v1", "/.well-known", "/_sandbox", "/_local", "/docs"];

export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: { proxy: Object.fromEntries(forwarded.map((path) => [path, api])) },
});

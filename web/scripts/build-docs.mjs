// The docs page: one self-contained HTML file rendering the API's OpenAPI document with
// Redoc, both inline, so it makes no request at all (no CDN, no fetch of the spec).
//   node scripts/build-docs.mjs   writes ../functions/docs/docs.html (served by GET /docs)
//                                 and dist/docs/index.html (for a static host)
// Its Content-Security-Policy allows exactly these two inline scripts (by hash), Redoc's
// inline styles, its search worker (blob:) and data: fonts and images; nothing else.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(web, "..");
const spec = JSON.parse(readFileSync(join(repo, "functions/docs/openapi.json"), "utf8"));
// Redoc's one remote resource is its "powered by" logo on cdn.redoc.ly: the page would
// request it on every load. It becomes an inline (blank) image, so nothing leaves the page.
const LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const bundle = readFileSync(join(web, "node_modules/redoc/bundles/redoc.standalone.js"), "utf8");
if (!bundle.includes(LOGO)) throw new Error(`redoc no longer loads ${LOGO}: review this script`);
const redoc = bundle.replaceAll(LOGO, "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E");
if (/https?:\/\/cdn\./.test(redoc)) throw new Error("redoc loads something from a CDN");

// JSON inside <script>: `<` escaped so no text of the spec (a description saying
// "</script>") can close the element; U+2028/9 escaped for old parsers.
const specJson = JSON.stringify(spec)
  .replace(/</g, "\\u003c")
  .replace(/\u2028/g, "\\u2028")
  .replace(/\u2029/g, "\\u2029");
if (/<\/script/i.test(redoc)) throw new Error("redoc.standalone.js contains </script>");

const init = `Redoc.init(JSON.parse(document.getElementById("spec").textContent), {
  hideDownloadButton: false, expandResponses: "200,201", requiredPropsFirst: true,
  sortPropsAlphabetically: false, pathInMiddlePanel: true, jsonSampleExpandLevel: 3
}, document.getElementById("redoc"));`;
const hash = (text) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
const csp = [
  "default-src 'none'",
  // Redoc compiles its sample generators with `new Function`: 'unsafe-eval' is its price
  `script-src ${hash(redoc)} ${hash(init)} 'unsafe-eval'`,
  "style-src 'unsafe-inline'",
  "img-src data:",
  "font-src data:",
  "worker-src blob:",
  "connect-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

const title = `${spec.info?.title ?? "Cashew API"} ${spec.info?.version ?? ""}`.trim();
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>${title.replace(/[<&"]/g, "")} · reference</title>
</head>
<body>
<div id="redoc"></div>
<script id="spec" type="application/json">${specJson}</script>
<script>${redoc}</script>
<script>${init}</script>
</body>
</html>
`;

writeFileSync(join(repo, "functions/docs/docs.html"), html);
writeFileSync(join(repo, "functions/docs/docs.csp"), csp);
mkdirSync(join(web, "dist/docs"), { recursive: true });
writeFileSync(join(web, "dist/docs/index.html"), html);
console.log(`docs page: ${(html.length / 1024).toFixed(0)} KiB (functions/docs/docs.html, dist/docs/index.html)`);

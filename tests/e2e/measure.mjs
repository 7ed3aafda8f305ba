// Time to first render and page weight of the console's overview and heat map, in headless
// Chromium against a running `serve --demo` (figures in docs/BENCHMARKS.md):
//
//   CONSOLE_URL=http://127.0.0.1:8080 RUNS=5 OUT=../../target/bench/console.json node measure.mjs
//
// Each page is loaded RUNS times cold (browser cache cleared) and RUNS times warm, with the
// CPU as is and slowed 4× (Chromium's CPU throttling: a modest laptop). Per load:
//   fcp    first contentful paint (the shell: header and menu);
//   ready  the page's data rendered (`body[data-ready="1"]`; for the coverage page that
//          includes the heat map, the trend chart and both tables);
//   main   the overview's stat cards / the heat map table present;
//   bytes  transferred (after compression) and decoded, by type: document, script,
//          stylesheet, API JSON (fetch), image (the trend SVG).

import { chromium } from "playwright-core";
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

const BASE = (process.env.CONSOLE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const RUNS = parseInt(process.env.RUNS || "5", 10);
const OUT = process.env.OUT || "console-measure.json";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send("Network.enable");

// Sign in once through the form.
await page.goto(`${BASE}/console/login`);
await page.fill("#username", process.env.CONSOLE_USER || "manager1");
await page.fill("#password", process.env.CONSOLE_PASSWORD || "demo");
await Promise.all([page.waitForURL(/\/console\/overview/), page.click("#login")]);
await page.waitForSelector('body[data-ready="1"]', { timeout: 60000 });
const estate = new URL(page.url()).searchParams.get("estate")
  || (await page.evaluate(async () => (await (await fetch("/v1/me")).json()).estates[0].id));

// Per-request accounting from the DevTools protocol.
let requests = new Map();
cdp.on("Network.responseReceived", (e) => {
  const r = requests.get(e.requestId) || {};
  r.type = e.type;
  r.url = e.response.url;
  r.status = e.response.status;
  requests.set(e.requestId, r);
});
cdp.on("Network.dataReceived", (e) => {
  const r = requests.get(e.requestId) || {};
  r.decoded = (r.decoded || 0) + e.dataLength;
  requests.set(e.requestId, r);
});
cdp.on("Network.loadingFinished", (e) => {
  const r = requests.get(e.requestId) || {};
  r.transferred = e.encodedDataLength;
  requests.set(e.requestId, r);
});

const PAGES = [
  { name: "overview", path: `/console/overview?estate=${estate}`, main: "#cov-today-coverage" },
  { name: "heatmap", path: `/console/coverage?estate=${estate}`, main: "table#heatmap" },
];

function summarise(list) {
  const s = [...list].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1] };
}

const results = [];
for (const throttle of [1, 4]) {
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: throttle });
  for (const p of PAGES) {
    for (const cache of ["cold", "warm"]) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) {
        if (cache === "cold") await cdp.send("Network.clearBrowserCache");
        requests = new Map();
        await page.goto(`${BASE}${p.path}`, { waitUntil: "commit" });
        await page.waitForSelector(p.main, { timeout: 60000 });
        const main = await page.evaluate(() => performance.now());
        await page.waitForSelector('body[data-ready="1"]', { timeout: 60000 });
        const ready = await page.evaluate(() => performance.now());
        // Let the trend image and late requests finish before counting bytes.
        await page.waitForLoadState("networkidle");
        const fcp = await page.evaluate(() =>
          performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
        const by = {};
        let transferred = 0, decoded = 0, count = 0;
        for (const r of requests.values()) {
          if (!r.url || !r.url.startsWith(BASE)) continue;
          const k = (r.type || "Other").toLowerCase();
          by[k] ??= { requests: 0, transferred: 0, decoded: 0 };
          by[k].requests++;
          by[k].transferred += r.transferred || 0;
          by[k].decoded += r.decoded || 0;
          transferred += r.transferred || 0;
          decoded += r.decoded || 0;
          count++;
        }
        runs.push({ fcp, main, ready, transferred, decoded, requests: count, by_type: by });
      }
      const row = {
        page: p.name, cache, cpu_slowdown: throttle, runs: RUNS,
        fcp_ms: summarise(runs.map((r) => r.fcp)),
        main_ms: summarise(runs.map((r) => r.main)),
        ready_ms: summarise(runs.map((r) => r.ready)),
        transferred_bytes: runs[runs.length - 1].transferred,
        decoded_bytes: runs[runs.length - 1].decoded,
        requests: runs[runs.length - 1].requests,
        by_type: runs[runs.length - 1].by_type,
      };
      results.push(row);
      console.log(`${p.name.padEnd(9)} ${cache} cpu×${throttle}: fcp ${row.fcp_ms.median.toFixed(0)} ms, ` +
        `main ${row.main_ms.median.toFixed(0)} ms, ready ${row.ready_ms.median.toFixed(0)} ms ` +
        `(min ${row.ready_ms.min.toFixed(0)}, max ${row.ready_ms.max.toFixed(0)}), ` +
        `${row.requests} requests, ${(row.transferred_bytes / 1024).toFixed(1)} KiB transferred, ` +
        `${(row.decoded_bytes / 1024).toFixed(1)} KiB decoded`);
      if (cache === "cold") {
        for (const [k, v] of Object.entries(row.by_type)) {
          console.log(`    ${k.padEnd(10)} ${String(v.requests).padStart(3)} req ` +
            `${(v.transferred / 1024).toFixed(1).padStart(7)} KiB transferred ${(v.decoded / 1024).toFixed(1).padStart(7)} KiB decoded`);
        }
      }
    }
  }
}
await browser.close();
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify({ base: BASE, when: new Date().toISOString(), results }, null, 2));
console.log(`wrote ${OUT}`);

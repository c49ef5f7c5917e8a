// Drives one headless Chromium page for test_dashboard.py, which keeps every
// assertion: it reads one JSON command per line on stdin and answers one JSON
// line on stdout, {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
//
//   {"op": "goto", "url": "http://127.0.0.1:PORT/"}  -> {status, title, content_type}
//   {"op": "evaluate", "expression": "document.title"} -> its value
//   {"op": "screenshot", "path": "/tmp/x.png"}        -> the path
//   {"op": "stats"}  -> {navigations, origins, requests, failed, errors}
//
// The browser is Debian's Chromium (ATTACHE_CHROMIUM, default
// /usr/bin/chromium); playwright-core downloads no browser of its own.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const browser = await chromium.launch({
  executablePath: process.env.ATTACHE_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Only loopback is reachable: no proxy, no background connections.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-proxy-server",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });

const stats = { navigations: 0, origins: [], requests: 0, failed: [], errors: [] };
page.on("framenavigated", (frame) => {
  if (frame === page.mainFrame()) stats.navigations += 1;
});
page.on("request", (request) => {
  stats.requests += 1;
  const { origin } = new URL(request.url());
  if (!stats.origins.includes(origin)) stats.origins.push(origin);
});
page.on("requestfailed", (request) => {
  stats.failed.push(`${request.url()}: ${request.failure()?.errorText}`);
});
page.on("pageerror", (error) => stats.errors.push(String(error)));
page.on("console", (message) => {
  if (message.type() === "error") stats.errors.push(message.text());
});

const ops = {
  async goto({ url }) {
    const response = await page.goto(url);
    return { status: response.status(), title: await page.title(),
             content_type: response.headers()["content-type"] };
  },
  evaluate: ({ expression }) => page.evaluate(expression),
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return path;
  },
  stats: () => stats,
};

for await (const line of createInterface({ input: process.stdin })) {
  let answer;
  try {
    const command = JSON.parse(line);
    answer = { ok: true, value: (await ops[command.op](command)) ?? null };
  } catch (error) {
    answer = { ok: false, error: String(error?.stack || error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();

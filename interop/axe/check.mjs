// axe-core over a list of lien pages in headless Chromium (Debian's, never a downloaded build).
// Reads {"base": URL, "pages": [{"name", "path", "cookies": [{name, value}], "scheme": "light"|"dark",
// "width", "height", "submit": a form to submit as it is, or null}]} on stdin and prints one JSON line per page:
// {"name", "url", "status", "violations": [{"id", "impact", "nodes", "help", "targets"}]}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const input = JSON.parse(readFileSync(0, "utf8"));
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

// The flags this machine needs: no sandbox as root, and no background networking (the network
// is closed, and Chromium's own connections would fail noisily).
const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
// One page in a context of its own (its own cookies, colour scheme and viewport).
async function check(page) {
  const context = await browser.newContext({
    viewport: { width: page.width || 1280, height: page.height || 900 },
    colorScheme: page.scheme || "light",
    // axe is injected as a script; a page's Content-Security-Policy must not stop it.
    bypassCSP: true,
  });
  const url = new URL(page.path, input.base);
  if (page.cookies?.length) {
    await context.addCookies(
      page.cookies.map((c) => ({ name: c.name, value: c.value, url: input.base })),
    );
  }
  const tab = await context.newPage();
  const response = await tab.goto(url.href, { waitUntil: "load" });
  let status = response?.status() ?? 0;
  if (page.submit) {
    // Submits the form as it is, past the browser's own checks, to see the page of errors.
    const [answer] = await Promise.all([
      tab.waitForNavigation({ waitUntil: "load" }),
      tab.evaluate((selector) => document.querySelector(selector).submit(), page.submit),
    ]);
    status = answer?.status() ?? 0;
  }
  await tab.evaluate(axeSource);
  const result = await tab.evaluate(() =>
    // WCAG 2.0, 2.1 and 2.2 A and AA, plus axe's best practices.
    window.axe.run(document, {
      runOnly: {
        type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
      },
    }),
  );
  const violations = result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    nodes: v.nodes.length,
    help: v.help,
    targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
  }));
  console.log(JSON.stringify({ name: page.name, url: url.href, status, violations }));
  await context.close();
}

// Three pages at a time: the machine has two cores, and Chromium waits on lien half the time.
try {
  const queue = [...input.pages];
  const worker = async () => {
    while (queue.length) await check(queue.shift());
  };
  await Promise.all([worker(), worker(), worker()]);
} finally {
  await browser.close();
}

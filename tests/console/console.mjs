// The console in a real browser (Debian's chromium, headless, driven by playwright-core), as
// tests/console.rs sets it up: a dead-lettered order whose cause is fixed. A wrong password
// gets nothing; the operator signs in, sees the dead letter with its reason, replays it after
// the confirmation, and sees the order delivered in its trace. Each page is saved as a
// screenshot in SCREENSHOTS.
//
// Environment: CONSOLE_URL, CONSOLE_USER, CONSOLE_PASSWORD, ORDER_ID, DEAD_LETTER (its
// partition:offset), SCREENSHOTS, CHROMIUM (the browser's path).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const base = env("CONSOLE_URL");
const user = env("CONSOLE_USER");
const password = env("CONSOLE_PASSWORD");
const orderId = env("ORDER_ID");
const deadLetter = env("DEAD_LETTER");
const shots = env("SCREENSHOTS");

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  // Signed out, every page leads to the sign-in form.
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login$/, "the failures page asks for a sign-in");
  await shot("sign-in");

  // A wrong password gets a 401 and nothing else.
  await page.fill("#username", user);
  await page.fill("#password", `${password}-wrong`);
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/login") && r.request().method() === "POST"),
    page.click("#sign-in"),
  ]);
  assert.equal(refused.status(), 401);
  assert.match(await page.textContent("#login-error"), /Wrong operator name or password/);
  for (const where of ["/", "/orders?q=" + orderId, "/audit"]) {
    await page.goto(base + where);
    assert.match(page.url(), /\/login$/, `${where} after a wrong password`);
  }
  const forged = await context.request.post(`${base}/replay`, {
    form: { record: deadLetter },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 401, "a replay without a session");
  const planted = await context.request.get(`${base}/`, {
    headers: { cookie: `ob_console=${user}|99999999999|00` },
    maxRedirects: 0,
  });
  assert.equal(planted.status(), 303, "a forged session cookie");
  // Guessing is slowed down: after five wrong passwords a name is refused unchecked.
  const guess = () =>
    context.request.post(`${base}/login`, { form: { username: "mallory", password: "guess-guess" }, maxRedirects: 0 });
  for (let i = 0; i < 5; i++) assert.equal((await guess()).status(), 401, `guess ${i + 1}`);
  assert.equal((await guess()).status(), 429, "the sixth guess");

  // The right password: the failures dashboard with the dead letter and its reason.
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/`), page.click("#sign-in")]);
  assert.equal(await page.textContent("#operator"), user);
  assert.equal((await page.textContent("#dead-letter-count")).trim(), "1");
  const row = page.locator(`#dead-letters tr[data-at="${deadLetter}"]`);
  const text = await row.textContent();
  assert.match(text, /erp-rejected/);
  assert.match(text, /The Item does not exist/);
  assert.match(await page.textContent("#by-class"), /erp-rejected\s*1/);
  assert.match(await page.textContent("#by-source"), /shopify\s*1/);
  assert.match(await page.textContent("#signature-failures"), /shopify \(mismatch\)\s*1/);
  await shot("failures");

  // Replay it, confirming first.
  await page.check(`#pick-${deadLetter.replace(":", "\\:")}`);
  await Promise.all([page.waitForURL(`${base}/replay/confirm`), page.click("#replay-selected")]);
  assert.match(await page.textContent("#to-replay"), new RegExp(deadLetter));
  await shot("replay-confirm");
  await Promise.all([page.waitForURL(`${base}/replay`), page.click("#confirm-replay")]);
  assert.match(await page.textContent("#replay-result"), /Replayed 1 dead letter/);

  // The order's trace: delivered once the sink has it.
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.goto(`${base}/orders?q=${encodeURIComponent(orderId)}`);
    const now = (await page.locator("#order-now").textContent().catch(() => "")) || "";
    if (/created in business-central/.test(now)) break;
    assert.ok(Date.now() < deadline, `the order was not delivered in time: ${now}`);
    await page.waitForTimeout(500); // polling the trace, bounded by the deadline
  }
  const trace = await page.textContent("table.trace");
  assert.match(trace, /dead-lettered by sink \(erp-rejected\)/);
  assert.match(trace, /replay of dead letter/);
  await shot("order");

  // The failures page now shows it replayed; the audit log has the sign-ins and the replay.
  await page.goto(`${base}/`);
  assert.equal((await page.textContent("#waiting-count")).trim(), "0");
  await page.goto(`${base}/audit`);
  const audit = await page.textContent("#audit");
  assert.match(audit, /console-sign-in/);
  assert.match(audit, /dlq-replay/);
  await shot("audit");
  console.log("console browser test passed");
} finally {
  await browser.close();
}

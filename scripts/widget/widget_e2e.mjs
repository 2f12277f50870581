#!/usr/bin/env node
// Quando's booking widget end to end in Debian's headless Chromium (playwright-core, pinned in
// package.json), against a real `quando serve` (run by scripts/widget_check.sh).
//
//   node scripts/widget/widget_e2e.mjs --binary target/debug/quando \
//     --database-url 'sqlite:///tmp/x/q.db?mode=rwc' --screens target/widget-screens [--label SQLite]
//
// The database must be fresh. `quando org create` gives a secret key; a Europe/Rome calendar
// (09:00-17:00 every day) and a 30-minute event type are made through the API; `quando key
// create --publishable` gives the widget's key, allowing only the host page's origin. The host
// page (host.html) is served from a second loopback origin and embeds /widget.js with one script
// tag. Cases, each in a fresh browser context:
//   a. Europe/Rome: pick a day and a slot, the countdown runs, a field error of the widget and one
//      of the API shown beside their fields, book; the API holds exactly that one event
//      (bookedVia "widget"), and the .ics link is there;
//   b. America/New_York: the zone note, slot labels in New York time (from the API's startTime,
//      formatted by Node), the day grouping, book; the stored startTime is the slot's;
//   c. a slot booked through the API after it was shown: the widget shows the refusal and the
//      next slots; one of them is booked;
//   d. a double click on Book while the first answer is lost on the way (the browser retries with
//      the same Idempotency-Key): exactly one event;
//   e. /book/{id}?key=... at 360x740 under its Content-Security-Policy: no horizontal scroll at
//      any step, driven by the keyboard only (Tab, Enter, Space, typing), the .ics downloaded and
//      read (UID, DTSTART, DTEND, SUMMARY, LOCATION);
//   f. the hold's countdown reaching 0 (the page's clock fast-forwarded): "expired", the days
//      again, and the hold released on the server.
// Every request of every page goes to the Quando origin or the host origin only; no console
// error, no page error. A screenshot of each step goes to --screens (NN-step.png).
// Exit 0 when all holds; 1 with the failing step on stderr.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');

function parseArgs(argv) {
  const out = {
    binary: path.join(REPO, 'target', 'debug', 'quando'),
    chromium: '/usr/bin/chromium',
    screens: path.join(REPO, 'target', 'widget-screens'),
    label: 'SQLite',
    databaseUrl: null,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(k in out)) throw new Error(`unknown option ${argv[i]}`);
    out[k] = argv[i + 1];
  }
  if (!out.databaseUrl) throw new Error('--database-url is required');
  return out;
}

const args = parseArgs(process.argv.slice(2));
const TAG = `[widget ${args.label}]`;
const log = (msg) => console.log(`${TAG} ${msg}`);

class CheckError extends Error {}
function check(cond, what) {
  if (!cond) throw new CheckError(what);
}
function equal(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new CheckError(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Intl output with its various spaces (U+202F before AM/PM) made plain. */
const plain = (s) => String(s).replace(/[\s\u202f\u00a0]+/g, ' ').trim();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// --- the server --------------------------------------------------------------------------------

const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'quando-widget-e2e-'));
const serverLog = path.join(WORK, 'server.log');
let server = null;

function cli(...argv) {
  const out = execFileSync(args.binary, [...argv, '--database-url', args.databaseUrl], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

async function startServer() {
  const port = await freePort();
  const env = { ...process.env, QUANDO_RATE_LIMIT_PER_MINUTE: '1000000', QUANDO_LOG: process.env.QUANDO_LOG || 'info' };
  delete env.QUANDO_BIND;
  delete env.QUANDO_DATABASE_URL;
  const logFd = fs.openSync(serverLog, 'a');
  server = spawn(args.binary, ['serve', '--bind', `127.0.0.1:${port}`, '--database-url', args.databaseUrl], {
    env,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  let exited = null;
  server.on('exit', (code, signal) => {
    exited = `status ${code ?? signal}`;
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the server exited (${exited}) before it was ready:\n${logTail()}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.status === 200) return base;
      last = `status ${r.status}`;
    } catch (e) {
      last = String(e.cause || e);
    }
    await sleep(100);
  }
  throw new Error(`the server was not ready after 120 s (last: ${last})`);
}

function stopServer() {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
}

function logTail(n = 40) {
  try {
    return fs.readFileSync(serverLog, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no server log)';
  }
}

process.on('exit', () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (process.env.KEEP_WORK === '1') console.log(`${TAG} kept ${WORK} (server.log)`);
  else fs.rmSync(WORK, { recursive: true, force: true });
});

/** One API call with a key: { status, headers, body }. */
async function api(base, key, method, p, body, headers) {
  const init = { method, headers: { Authorization: `Bearer ${key}`, ...(headers || {}) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(base + p, init);
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, headers: r.headers, body: json };
}

async function ok(promise, status, what) {
  const r = await promise;
  if (r.status !== status) throw new CheckError(`${what}: HTTP ${r.status}, want ${status}: ${JSON.stringify(r.body).slice(0, 600)}`);
  return r.body;
}

// --- the browser ----------------------------------------------------------------------------------

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  const file = path.join(args.screens, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A context whose pages may reach only the given origins, with no console or page error. */
async function newContext(browser, allowedOrigins, options) {
  const ctx = await browser.newContext({ locale: 'en-US', acceptDownloads: true, ...options });
  ctx.setDefaultTimeout(15_000);
  const problems = [];
  ctx.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    const origin = new URL(u).origin;
    if (!allowedOrigins.includes(origin)) problems.push(`a request to another origin: ${req.method()} ${u}`);
  });
  ctx.on('page', (page) => {
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
  });
  ctx.problems = () => problems;
  ctx.allowProblem = (re) => {
    for (let i = problems.length - 1; i >= 0; i--) if (re.test(problems[i])) problems.splice(i, 1);
  };
  return ctx;
}

function assertClean(ctx, what) {
  const p = ctx.problems();
  check(p.length === 0, `${what}: ${p.join('; ')}`);
}

/** The focused element, through the widget's shadow root. */
function deepActive(page) {
  return page.evaluate(() => {
    let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    if (!a) return null;
    return {
      tag: a.tagName.toLowerCase(),
      id: a.id || null,
      type: a.getAttribute('type'),
      date: a.getAttribute('data-date'),
      start: a.getAttribute('data-start'),
      text: (a.textContent || '').trim().slice(0, 80),
    };
  });
}

const W = (page) => ({
  days: page.locator('quando-booking .days button'),
  slots: page.locator('quando-booking .slots button'),
  zone: page.locator('quando-booking .zone'),
  status: page.locator('quando-booking .status'),
  timer: page.locator('quando-booking .timer'),
  name: page.locator('quando-booking #qb-name'),
  email: page.locator('quando-booking #qb-email'),
  phone: page.locator('quando-booking #qb-phone'),
  book: page.locator('quando-booking button[type=submit]'),
  done: page.locator('quando-booking .done'),
  ics: page.locator('quando-booking a.ics'),
  refused: page.locator('quando-booking .refused'),
  next: page.locator('quando-booking .next button'),
});

async function pickDayAndSlot(page, { dayIndex = 0, slotIndex = 0 } = {}) {
  const w = W(page);
  await w.days.first().waitFor();
  const dayCount = await w.days.count();
  const day = w.days.nth(Math.min(dayIndex, dayCount - 1));
  const date = await day.getAttribute('data-date');
  await day.click();
  equal(await day.getAttribute('aria-pressed'), 'true', 'the chosen day is pressed');
  await w.slots.first().waitFor();
  const slot = w.slots.nth(Math.min(slotIndex, (await w.slots.count()) - 1));
  return { date, slot, start: await slot.getAttribute('data-start'), label: plain(await slot.textContent()) };
}

async function fillAndBook(page, person) {
  const w = W(page);
  await w.name.fill(person.name);
  await w.email.fill(person.email);
  await w.phone.fill(person.phone || '');
  await w.book.click();
  await w.done.waitFor();
  return w.done.getAttribute('data-event-id');
}

/** Whether the API (secret key) offers the slot starting at `start`. */
async function isFree(ctx, start) {
  const dateFrom = new Date(Date.parse(start) - 3600_000).toISOString();
  const dateTo = new Date(Date.parse(start) + 3600_000).toISOString();
  const q = new URLSearchParams({ calendarId: ctx.calendarId, eventTypeId: ctx.eventTypeId, dateFrom, dateTo });
  const a = await ok(api(ctx.base, ctx.secret, 'GET', `/v1/calendar/availability?${q}`), 200, `availability around ${start}`);
  return a.data.slots.some((s) => Date.parse(s.startTime) === Date.parse(start));
}

async function eventsOf(ctx, query) {
  const q = new URLSearchParams({ calendarId: ctx.calendarId, limit: '100', ...query });
  return (await ok(api(ctx.base, ctx.secret, 'GET', `/v1/calendar/events?${q}`), 200, `list events ${q}`)).data;
}

async function exactlyOne(ctx, email, want) {
  const found = await eventsOf(ctx, { customerEmail: email });
  equal(found.length, 1, `events of ${email}`);
  const e = found[0];
  equal(e.customerName, want.name, `${email}: customerName`);
  equal(e.customerEmail, email, `${email}: customerEmail`);
  if (want.phoneE164) equal(e.customerPhone, want.phoneE164, `${email}: customerPhone`);
  equal(e.bookedVia, 'widget', `${email}: bookedVia`);
  equal(e.status, 'confirmed', `${email}: status`);
  equal(e.eventTypeId, ctx.eventTypeId, `${email}: eventTypeId`);
  if (want.start) equal(Date.parse(e.startTime), Date.parse(want.start), `${email}: startTime`);
  if (want.timezone) equal(e.timezone, want.timezone, `${email}: timezone`);
  return e;
}

// --- the cases ------------------------------------------------------------------------------------

async function caseRome(browser, ctx) {
  const c = await newContext(browser, [ctx.base, ctx.host], { timezoneId: 'Europe/Rome', viewport: { width: 820, height: 900 } });
  const page = await c.newPage();
  await page.goto(ctx.host + '/');
  const w = W(page);
  await w.days.first().waitFor();
  // Mounted right after the script tag, before the text that follows it.
  const placed = await page.evaluate(() => {
    const el = document.querySelector('quando-booking');
    return !!el && el.previousElementSibling.tagName === 'SCRIPT' && el.nextElementSibling.textContent === 'Text after the widget.';
  });
  check(placed, 'the widget is mounted right after its script tag');
  equal(plain(await page.locator('quando-booking h2').textContent()), ctx.eventType.name, 'the heading is the event type');
  check(plain(await page.locator('quando-booking .meta').textContent()).includes('30 min'), 'the duration is shown');
  equal(plain(await w.zone.textContent()), 'Times in Europe/Rome', 'the zone note in Rome (no calendar note)');
  await shot(page, 'host-days');
  const { start, label } = await pickDayAndSlot(page, { dayIndex: 1, slotIndex: 1 });
  equal(label, plain(new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Rome', hour: 'numeric', minute: '2-digit' }).format(new Date(start))), 'the slot label in Rome');
  await shot(page, 'host-slots');
  await W(page).slots.nth(1).click();
  await w.name.waitFor();
  // For screen readers: the fields by their labels, the status region, the timer, the headings.
  await page.getByRole('heading', { level: 2, name: ctx.eventType.name }).waitFor();
  await page.getByRole('heading', { level: 3, name: 'Your details' }).waitFor();
  for (const label of ['Name', 'Email', 'Phone (optional)']) {
    check((await page.getByLabel(label, { exact: true }).count()) === 1, `one field labelled "${label}"`);
  }
  equal(await page.getByRole('status').getAttribute('aria-live'), 'polite', 'the status region is polite');
  check(await page.getByRole('button', { name: 'Choose another time' }).isVisible(), 'a button to choose another time');
  // The countdown is visible and runs.
  check(await page.getByRole('timer').isVisible(), 'the countdown is visible');
  const t0 = plain(await w.timer.textContent());
  check(/^Held for you for (9:5\d|10:00)$/.test(t0), `the countdown starts near 10:00: ${t0}`);
  await sleep(2100);
  const t1 = plain(await w.timer.textContent());
  check(t1 !== t0 && /^Held for you for \d+:\d\d$/.test(t1), `the countdown moves: ${t0} then ${t1}`);
  // A field error found by the widget, beside its field.
  await w.name.fill('Laura Bianchi');
  await w.email.fill('laura@example');
  await w.book.click();
  await page.locator('quando-booking #qb-email-error').filter({ hasText: 'not a valid email address' }).waitFor();
  equal(await w.email.getAttribute('aria-invalid'), 'true', 'email aria-invalid');
  check((await w.email.getAttribute('aria-describedby')).split(' ').includes('qb-email-error'), 'email described by its error');
  // A field error found only by the API (no country has +999), beside its field.
  await w.email.fill('laura.a@example.com');
  await w.phone.fill('+999 1234 5678');
  await w.book.click();
  const phoneError = page.locator('quando-booking #qb-phone-error');
  await phoneError.filter({ hasText: 'not a valid phone number' }).waitFor();
  equal(await w.phone.getAttribute('aria-invalid'), 'true', 'phone aria-invalid after the API refused it');
  equal(await w.email.getAttribute('aria-invalid'), null, 'email no longer invalid');
  check((await w.phone.getAttribute('aria-describedby')).split(' ').includes('qb-phone-error'), 'phone described by its error');
  c.allowProblem(/status of 400 \(Bad Request\)/); // the API's answer to +999, logged by Chromium
  await shot(page, 'host-field-errors');
  await w.phone.fill('+39 06 1234 5678');
  await w.book.click();
  await w.done.waitFor();
  const ics = await w.ics.getAttribute('href');
  check(ics && ics.startsWith('data:text/calendar'), 'the .ics link is a data:text/calendar URL');
  equal(await w.ics.getAttribute('download'), 'booking.ics', 'the .ics link downloads booking.ics');
  check(decodeURIComponent(ics).includes('BEGIN:VEVENT'), 'the .ics has a VEVENT');
  await shot(page, 'host-booked');
  await exactlyOne(ctx, 'laura.a@example.com', { name: 'Laura Bianchi', phoneE164: '+390612345678', start, timezone: 'Europe/Rome' });
  assertClean(c, 'case a');
  await c.close();
  log('a. Rome: day, slot, countdown, field errors (widget and API), booked once with bookedVia widget, .ics link: ok');
}

async function caseNewYork(browser, ctx) {
  const c = await newContext(browser, [ctx.base, ctx.host], { timezoneId: 'America/New_York', viewport: { width: 820, height: 900 } });
  const page = await c.newPage();
  await page.goto(ctx.host + '/');
  const w = W(page);
  await w.days.first().waitFor();
  equal(plain(await w.zone.textContent()), 'Times in America/New_York · calendar in Europe/Rome', 'the zone note in New York');
  // Two weeks a page: Later, then Earlier again.
  const firstDate = await w.days.first().getAttribute('data-date');
  await page.locator('quando-booking button[aria-label="Later dates"]').click();
  await page.waitForFunction((d) => {
    const b = document.querySelector('quando-booking').shadowRoot.querySelector('.days button');
    return b && b.dataset.date >= d;
  }, new Date(Date.parse(new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York' }).format(new Date())) + 14 * 86400_000).toISOString().slice(0, 10));
  await page.locator('quando-booking button[aria-label="Earlier dates"]').click();
  await page.waitForFunction((d) => {
    const b = document.querySelector('quando-booking').shadowRoot.querySelector('.days button');
    return b && b.dataset.date === d;
  }, firstDate);
  check(await page.locator('quando-booking button[aria-label="Earlier dates"]').isDisabled(), 'no dates before today');
  // Not today's slots: the first of them may start while the case runs.
  const { date, start, label } = await pickDayAndSlot(page, { dayIndex: 1 });
  const ny = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', minute: '2-digit' });
  equal(label, plain(ny.format(new Date(start))), 'the first slot label in New York time');
  const nyDate = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(start));
  equal(date, nyDate, 'the slot is grouped under its New York date');
  // Every label of the day, not only the first.
  for (const b of await w.slots.all()) {
    equal(plain(await b.textContent()), plain(ny.format(new Date(await b.getAttribute('data-start')))), 'a slot label in New York time');
  }
  // The API's own view, for the same instant: Rome 09:00 is 03:00 in New York in winter.
  const rome = new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Rome', hour: 'numeric', minute: '2-digit' }).format(new Date(start));
  check(plain(rome) !== label, `the New York label differs from Rome's (${rome})`);
  await shot(page, 'new-york-slots');
  await w.slots.first().click();
  await w.name.waitFor();
  check(!(await isFree(ctx, start)), 'the held slot is out of the availability');
  // "Choose another time" releases the hold at once; then the same slot is held again.
  await page.getByRole('button', { name: 'Choose another time' }).click();
  await w.slots.first().waitFor();
  check(await isFree(ctx, start), 'the released slot is free again');
  equal(await w.slots.first().getAttribute('data-start'), start, 'the released slot is offered again');
  await w.slots.first().click();
  await w.name.waitFor();
  check(plain(await page.locator('quando-booking .summary').textContent()).includes(`${plain(rome)} in Europe/Rome`), 'the form notes the calendar time');
  await shot(page, 'new-york-form');
  await fillAndBook(page, { name: 'John Smith', email: 'john.b@example.com', phone: '+1 (201) 555-0123' }).catch(async (e) => {
    // a numbering plan may refuse a number: show what the widget said.
    throw new CheckError(`booking in New York: ${e.message}; widget says: ${plain(await page.locator('quando-booking .qb').textContent())}`);
  });
  check(plain(await page.locator('quando-booking .done .when').textContent()).includes(label), 'the confirmation shows the New York time');
  await shot(page, 'new-york-booked');
  await exactlyOne(ctx, 'john.b@example.com', { name: 'John Smith', start, timezone: 'America/New_York' });
  assertClean(c, 'case b');
  await c.close();
  log(`b. New York: "${label}" for ${start}, zone note, later/earlier dates, released and held again, booked at that instant: ok`);
}

async function caseRefused(browser, ctx) {
  const c = await newContext(browser, [ctx.base, ctx.host], { timezoneId: 'Europe/Rome', viewport: { width: 820, height: 900 } });
  const page = await c.newPage();
  await page.goto(ctx.host + '/');
  const w = W(page);
  const { slot, start } = await pickDayAndSlot(page, { dayIndex: 2 });
  // Someone else books that time through the API after the widget showed it.
  const end = new Date(Date.parse(start) + 30 * 60_000).toISOString();
  await ok(
    api(ctx.base, ctx.secret, 'POST', '/v1/calendar/events', {
      calendarId: ctx.calendarId, eventTypeId: ctx.eventTypeId, startTime: start, endTime: end, timezone: 'Europe/Rome',
      customerName: 'Someone Else', customerEmail: 'someone.c@example.com',
    }),
    201,
    'book the shown slot through the API',
  );
  await slot.click();
  await w.refused.waitFor();
  equal(await w.refused.getAttribute('data-reason'), 'conflict', 'the refusal reason');
  check(plain(await page.locator('quando-booking .refused .reason').textContent()).length > 0, 'the reason is shown');
  const nextCount = await w.next.count();
  check(nextCount >= 1, 'the next free slots are offered');
  const nextStart = await w.next.first().getAttribute('data-start');
  check(Date.parse(nextStart) !== Date.parse(start), 'the next slot is another time');
  check(plain(await w.status.textContent()).length > 0, 'the status region says why');
  c.allowProblem(/status of 409 \(Conflict\)/); // the hold's refusal, logged by Chromium
  await shot(page, 'refused-next-slots');
  await w.next.first().click();
  await w.name.waitFor();
  await fillAndBook(page, { name: 'Carla Verdi', email: 'carla.c@example.com', phone: '+39 312 345 6789' });
  await shot(page, 'refused-then-booked');
  await exactlyOne(ctx, 'carla.c@example.com', { name: 'Carla Verdi', phoneE164: '+393123456789', start: nextStart });
  assertClean(c, 'case c');
  await c.close();
  log(`c. refused slot: reason conflict, ${nextCount} next slots, the first booked: ok`);
}

async function caseDoubleClick(browser, ctx) {
  const c = await newContext(browser, [ctx.base, ctx.host], { timezoneId: 'Europe/Rome', viewport: { width: 820, height: 900 } });
  const page = await c.newPage();
  await page.goto(ctx.host + '/');
  const w = W(page);
  const { start } = await pickDayAndSlot(page, { dayIndex: 3 });
  await w.slots.first().click();
  await w.name.waitFor();
  await w.name.fill('Marco Neri');
  await w.email.fill('marco.d@example.com');
  // The first booking reaches the server, but its answer is lost: the widget must retry with the
  // same Idempotency-Key, and the server must answer with the same event.
  const keys = [];
  await page.route('**/v1/calendar/events', async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.continue();
    keys.push(req.headers()['idempotency-key']);
    if (keys.length === 1) {
      await route.fetch();
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  await w.book.dblclick();
  await w.done.waitFor();
  c.allowProblem(/ERR_CONNECTION_RESET|Failed to load resource/);
  check(keys.length >= 2, `the widget retried after the lost answer (${keys.length} POSTs)`);
  check(keys.every((k) => k && k === keys[0]), `one Idempotency-Key for the booking: ${JSON.stringify(keys)}`);
  const id = await w.done.getAttribute('data-event-id');
  await shot(page, 'double-click-booked');
  const e = await exactlyOne(ctx, 'marco.d@example.com', { name: 'Marco Neri', start });
  equal(e.id, id, 'the widget shows the one event');
  assertClean(c, 'case d');
  await c.close();
  log(`d. double click on Book with the first answer lost: ${keys.length} POSTs, one key, one event: ok`);
}

async function noHorizontalScroll(page, what) {
  const m = await page.evaluate(() => ({ sw: document.scrollingElement.scrollWidth, cw: document.scrollingElement.clientWidth }));
  check(m.sw <= 360, `${what}: the page scrolls sideways at 360 px (scrollWidth ${m.sw})`);
}

async function pressTabUntil(page, pred, what, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const a = await deepActive(page);
    if (a && pred(a)) return a;
  }
  throw new CheckError(`Tab never reached ${what}`);
}

async function caseBookPage(browser, ctx) {
  const c = await newContext(browser, [ctx.base], { timezoneId: 'Europe/Rome', viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, hasTouch: true });
  const csp = [];
  c.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
  });
  const page = await c.newPage();
  const url = `${ctx.base}/book/${ctx.eventTypeId}?key=${encodeURIComponent(ctx.publishable)}`;
  const resp = await page.goto(url);
  equal(resp.status(), 200, 'GET /book/{id}');
  const policy = resp.headers()['content-security-policy'] || '';
  check(/script-src 'self'/.test(policy) && /default-src 'none'/.test(policy), `the /book page has its CSP: ${policy}`);
  const w = W(page);
  await w.days.first().waitFor();
  await noHorizontalScroll(page, 'days');
  await shot(page, 'phone-days');
  // Keyboard only: Tab to the second day (the first one's slots may start while the case runs),
  // Enter; Tab to its first slot, Space.
  const firstDay = await w.days.first().getAttribute('data-date');
  const day = await pressTabUntil(page, (a) => a.tag === 'button' && a.date && a.date !== firstDay, 'the second day button');
  const ring = await page.evaluate(() => {
    let a = document.activeElement;
    while (a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    const cs = getComputedStyle(a);
    return `${cs.outlineStyle} ${cs.outlineWidth}`;
  });
  equal(ring, 'solid 3px', 'a visible focus outline on the focused day');
  check(day.date > firstDay, 'Tab goes through the days in order');
  await page.keyboard.press('Enter');
  await w.slots.first().waitFor();
  equal((await deepActive(page)).id, 'qb-slots', 'focus moves to the times heading');
  equal(await page.locator(`quando-booking .days button[data-date="${day.date}"]`).getAttribute('aria-pressed'), 'true', 'Enter chose the day');
  const slot = await pressTabUntil(page, (a) => a.tag === 'button' && a.start, 'a slot button', 3);
  await noHorizontalScroll(page, 'slots');
  await shot(page, 'phone-slots');
  await page.keyboard.press('Space');
  await w.name.waitFor();
  equal((await deepActive(page)).id, 'qb-name', 'focus moves to the name field');
  await page.keyboard.type('Giulia Russo');
  await page.keyboard.press('Tab');
  equal((await deepActive(page)).id, 'qb-email', 'Tab reaches the email field');
  await page.keyboard.type('giulia.e@example.com');
  await page.keyboard.press('Tab');
  equal((await deepActive(page)).id, 'qb-phone', 'Tab reaches the phone field');
  await page.keyboard.type('+39 02 1234 5678');
  await noHorizontalScroll(page, 'form');
  await shot(page, 'phone-form');
  await page.keyboard.press('Tab');
  const submit = await deepActive(page);
  equal([submit.tag, submit.type], ['button', 'submit'], 'Tab reaches Book');
  await page.keyboard.press('Enter');
  await w.done.waitFor();
  await noHorizontalScroll(page, 'booked');
  await shot(page, 'phone-booked');
  const e = await exactlyOne(ctx, 'giulia.e@example.com', { name: 'Giulia Russo', phoneE164: '+390212345678', start: slot.start });
  // The .ics downloads under the page's CSP, and says what was booked.
  const [download] = await Promise.all([page.waitForEvent('download'), w.ics.click()]);
  equal(download.suggestedFilename(), 'booking.ics', 'the download name');
  const ics = fs.readFileSync(await download.path(), 'utf8');
  const stamp = (iso) => new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  for (const line of [
    'BEGIN:VCALENDAR', 'BEGIN:VEVENT', `UID:${e.id.replace(/-/g, '')}@quando`, `DTSTART:${stamp(e.startTime)}`, `DTEND:${stamp(e.endTime)}`,
    `SUMMARY:${ctx.eventType.name}`, `LOCATION:${ctx.eventType.location.replace(/,/g, '\\,')}`, 'END:VEVENT', 'END:VCALENDAR',
  ]) {
    check(ics.split('\r\n').includes(line), `the .ics has ${line}:\n${ics}`);
  }
  check(/^DTSTAMP:\d{8}T\d{6}Z$/m.test(ics), 'the .ics has a DTSTAMP in UTC');
  equal(csp, [], 'no CSP violation');
  assertClean(c, 'case e');
  await c.close();
  log('e. /book at 360x740: no sideways scroll, Tab/Enter/Space/typing only, booked, .ics downloaded under the CSP: ok');
}

async function caseExpiry(browser, ctx) {
  const c = await newContext(browser, [ctx.base], { timezoneId: 'Europe/Rome', viewport: { width: 800, height: 900 } });
  const page = await c.newPage();
  await page.clock.install();
  await page.goto(`${ctx.base}/book/${ctx.eventTypeId}?key=${encodeURIComponent(ctx.publishable)}`);
  const w = W(page);
  const { start } = await pickDayAndSlot(page, { dayIndex: 4 });
  await w.slots.first().click();
  await w.timer.waitFor();
  const held = async () => !(await isFree(ctx, start));
  check(await held(), 'the held slot is out of the availability');
  await page.clock.fastForward('09:30');
  check(/^Held for you for 0:\d\d$/.test(plain(await w.timer.textContent())), 'the countdown is under a minute');
  await shot(page, 'hold-last-minute');
  await page.clock.fastForward('00:45');
  await w.status.filter({ hasText: 'expired' }).waitFor();
  await w.days.first().waitFor();
  check(!(await w.name.isVisible()), 'the form is gone');
  await shot(page, 'hold-expired');
  // The widget released the hold: the slot is free again.
  for (let i = 0; i < 20 && (await held()); i++) await sleep(100);
  check(!(await held()), 'the expired hold was released');
  assertClean(c, 'case f');
  await c.close();
  log('f. hold countdown to 0: "expired", days shown again, hold released: ok');
}

// --- main -----------------------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  fs.mkdirSync(args.screens, { recursive: true });
  for (const f of fs.readdirSync(args.screens)) if (/^\d\d-.*\.png$/.test(f)) fs.rmSync(path.join(args.screens, f));
  const org = cli('org', 'create', '--name', 'widget-check');
  const secret = org.apiKey.key;
  const base = await startServer();
  log(`server ${base} (${args.databaseUrl.replace(/\/\/[^@/]*@/, '//')})`);
  const days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  const calendar = (
    await ok(
      api(base, secret, 'POST', '/v1/calendar/calendars', {
        name: 'Studio Rossi',
        timezone: 'Europe/Rome',
        workingHours: days.map((day) => ({ day, start: '09:00', end: '17:00' })),
      }),
      201,
      'create the calendar',
    )
  ).data;
  const eventType = (
    await ok(
      api(base, secret, 'POST', '/v1/calendar/event-types', {
        calendarId: calendar.id, name: 'Visita di controllo', durationMinutes: 30, location: 'Via Roma 1, Firenze',
      }),
      201,
      'create the event type',
    )
  ).data;
  let host = null;
  const hostPort = await freePort();
  const hostOrigin = `http://127.0.0.1:${hostPort}`;
  const key = cli('key', 'create', '--org', org.organization.id, '--publishable', '--event-types', eventType.id, '--origins', hostOrigin);
  check(/^qnd_pub_/.test(key.key), `a publishable key: ${JSON.stringify(key)}`);
  host = await startHostOn(hostPort, base, key.key, eventType.id);
  const ctx = { base, host: host.base, secret, publishable: key.key, calendarId: calendar.id, eventTypeId: eventType.id, eventType };
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  log(`Chromium ${browser.version()}, host page ${host.base}`);
  let failed = null;
  const cases = [caseRome, caseNewYork, caseRefused, caseDoubleClick, caseBookPage, caseExpiry];
  try {
    for (const run of cases) {
      try {
        await run(browser, ctx);
      } catch (e) {
        failed = e;
        const contexts = browser.contexts();
        for (const cx of contexts) if (cx.problems && cx.problems().length) console.error(`${TAG} in the browser: ${cx.problems().join('; ')}`);
        for (const cx of contexts) for (const p of cx.pages()) await shot(p, `FAILED-${run.name}`).catch(() => {});
        break;
      }
    }
    if (!failed) {
      const all = await eventsOf(ctx, {});
      equal(all.length, 6, 'events on the calendar after all cases (5 through the widget, 1 through the API)');
      equal(all.filter((e) => e.bookedVia === 'widget').length, 5, 'events booked through the widget');
    }
  } catch (e) {
    failed = failed || e;
  } finally {
    await browser.close().catch(() => {});
    host.close();
    stopServer();
  }
  if (failed) {
    console.error(`${TAG} FAILED: ${failed.stack || failed}`);
    console.error(`${TAG} server log tail:\n${logTail(30)}`);
    process.exit(1);
  }
  log(`${cases.length} cases passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${path.relative(REPO, args.screens) || '.'}`);
}

async function startHostOn(port, quandoBase, key, eventTypeId) {
  const page = fs
    .readFileSync(path.join(HERE, 'host.html'), 'utf8')
    .replaceAll('__QUANDO__', quandoBase)
    .replaceAll('__KEY__', key)
    .replaceAll('__EVENT_TYPE__', eventTypeId);
  const srv = http.createServer((req, res) => {
    if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  return { base: `http://127.0.0.1:${port}`, close: () => srv.close() };
}

main().catch((e) => {
  console.error(`${TAG} FAILED: ${e.stack || e}`);
  if (server) console.error(`${TAG} server log tail:\n${logTail(30)}`);
  stopServer();
  process.exit(1);
});

/*! Quando booking widget: plain ES2020, no dependencies, nothing fetched but Quando's own API.
 *
 * Embed it in any page, with a publishable key that allows the page's origin:
 *
 *   <script src="https://quando.example/widget.js" data-key="qnd_pub_..." data-event-type="EVENT-TYPE-ID"></script>
 *
 * A <quando-booking> element is inserted right after that script tag. Or place the element
 * yourself and load the script once:
 *
 *   <quando-booking data-key="qnd_pub_..." data-event-type="EVENT-TYPE-ID"></quando-booking>
 *   <script src="https://quando.example/widget.js" defer></script>
 *
 * The API is the origin widget.js was loaded from (or the element's data-api). The look can be
 * tuned from the host page with CSS custom properties on the element: --quando-accent,
 * --quando-font, --quando-radius.
 */
(() => {
  'use strict';

  const TAG = 'quando-booking';
  const WINDOW_DAYS = 14; // one page of days; availability takes at most 62
  const HOLD_TTL_SECONDS = 600; // the API's default hold
  const MAX_AVAILABILITY_PAGES = 5; // 1,000 slots each (nextDateFrom)

  const me =
    document.currentScript ||
    Array.from(document.querySelectorAll('script[src]')).find((s) => /\/widget\.js([?#]|$)/.test(s.src));
  const API = me && me.src ? new URL(me.src, document.baseURI).origin : location.origin;

  const CSS = `
:host{display:block;box-sizing:border-box;max-width:40rem;color:#1f2328;
  font-family:var(--quando-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);
  font-size:16px;line-height:1.45;text-align:left;
  --qb-accent:var(--quando-accent,#1d4ed8);--qb-radius:var(--quando-radius,10px);
  --qb-muted:#57606a;--qb-line:#d0d7de;--qb-danger:#b42318;--qb-focus:#0b3d91}
:host([hidden]){display:none}
*,*::before,*::after{box-sizing:border-box}
.qb{background:#fff;border:1px solid var(--qb-line);border-radius:var(--qb-radius);padding:1rem;
  overflow-wrap:anywhere;min-width:0}
h2{font-size:1.3rem;line-height:1.25;margin:0 0 .25rem}
h3{font-size:1.05rem;line-height:1.3;margin:1rem 0 .5rem}
p{margin:0 0 .5rem}
.meta,.zone,.hint{color:var(--qb-muted);font-size:.9rem}
.zone{margin-bottom:.25rem}
button{font:inherit;line-height:1.2;cursor:pointer;border-radius:calc(var(--qb-radius) - 2px);
  border:1px solid #8c959f;background:#fff;color:#1f2328;padding:.55rem .8rem;min-height:44px;max-width:100%}
button:hover:not([disabled]){border-color:var(--qb-accent);color:var(--qb-accent)}
button[disabled]{opacity:.55;cursor:not-allowed}
button.primary{background:var(--qb-accent);border-color:var(--qb-accent);color:#fff;font-weight:600}
button.primary:hover:not([disabled]){color:#fff;filter:brightness(1.1)}
button.link{border-color:transparent;background:none;color:var(--qb-accent);text-decoration:underline;
  padding-left:.25rem;padding-right:.25rem}
:focus{outline:none}
:focus-visible{outline:3px solid var(--qb-focus);outline-offset:2px}
[tabindex="-1"]:focus-visible{outline:none}
.days,.slots,.next{display:grid;gap:.5rem;margin:0 0 .5rem;padding:0;list-style:none}
.days{grid-template-columns:repeat(auto-fill,minmax(5.5rem,1fr))}
.slots{grid-template-columns:repeat(auto-fill,minmax(5.5rem,1fr))}
.slots button{white-space:nowrap;padding-left:.3rem;padding-right:.3rem;font-variant-numeric:tabular-nums}
.next{grid-template-columns:repeat(auto-fill,minmax(11rem,1fr))}
.days li,.slots li,.next li{display:flex;min-width:0}
.days button,.slots button,.next button{width:100%}
.days button{display:flex;flex-direction:column;align-items:flex-start;text-align:left;gap:.1rem}
.days .wd{font-size:.85rem}.days .day{font-weight:600}
.days .count{font-size:.8rem;color:var(--qb-muted)}
.days button[aria-pressed="true"]{background:var(--qb-accent);border-color:var(--qb-accent);color:#fff}
.days button[aria-pressed="true"] .count{color:#fff}
.pager{display:grid;grid-template-columns:auto 1fr auto;gap:.25rem;align-items:center;margin:.25rem 0 .5rem}
.pager .range{color:var(--qb-muted);font-size:.9rem;text-align:center}
.pager button{white-space:nowrap}
.status{margin:.5rem 0;padding:.5rem .75rem;border-radius:calc(var(--qb-radius) - 2px);background:#f6f8fa}
.status:empty{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);border:0}
.status.error{background:#fef3f2;color:var(--qb-danger);border:1px solid #fda29b}
.summary{background:#f6f8fa;border-radius:calc(var(--qb-radius) - 2px);padding:.6rem .75rem;margin:0 0 .75rem}
.summary strong{display:block}
.timer{display:inline-block;margin-top:.25rem;font-variant-numeric:tabular-nums;font-weight:600}
.timer.low{color:var(--qb-danger)}
form{margin:0}
.field{margin:0 0 .8rem}
label{display:block;font-weight:600;margin:0 0 .2rem}
.opt{font-weight:400;color:var(--qb-muted)}
input{font:inherit;width:100%;min-height:44px;padding:.5rem .65rem;border:1px solid #8c959f;
  border-radius:calc(var(--qb-radius) - 2px);background:#fff;color:#1f2328}
input[aria-invalid="true"]{border-color:var(--qb-danger);border-width:2px}
.ferr{color:var(--qb-danger);font-size:.9rem;margin:.25rem 0 0}
.ferr:empty{display:none}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.done h3{color:#1a7f37}
a.ics{display:inline-flex;align-items:center;min-height:44px;padding:.55rem .8rem;border-radius:calc(var(--qb-radius) - 2px);
  background:var(--qb-accent);color:#fff;font-weight:600;text-decoration:none}
a.ics:hover{filter:brightness(1.1)}
.sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media (max-width:420px){.qb{padding:.75rem}.days{grid-template-columns:repeat(auto-fill,minmax(4.75rem,1fr))}}
`;

  const REASONS = {
    conflict: 'Someone has just booked this time.',
    fully_booked: 'Every time in these dates is booked.',
    outside_working_hours: 'This time is outside working hours.',
    closed_override: 'The calendar is closed on that day.',
    before_minimum_notice: 'This time is too soon to book.',
    beyond_max_advance: 'This time is too far ahead to book.',
  };
  const NO_SLOTS = {
    outside_working_hours: 'There is no working time in these dates.',
    closed_override: 'The calendar is closed on these dates.',
    fully_booked: 'Every time in these dates is booked.',
    before_minimum_notice: 'These dates are too soon to book.',
    beyond_max_advance: 'These dates are too far ahead to book.',
  };

  // --- small helpers -------------------------------------------------------------------------

  /** An element with attributes (`on*` are listeners, `text` the text) and children. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(typeof kid === 'object' ? kid : String(kid));
    }
    return el;
  }

  /** 128 random bits as hex (crypto.randomUUID needs a secure context; this does not). */
  function randomId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function visitorZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    } catch (e) {
      return 'UTC';
    }
  }

  /** `YYYY-MM-DD` of an instant in a zone. */
  function dateIn(instant, zone) {
    const p = {};
    const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
    for (const part of f.formatToParts(instant)) p[part.type] = part.value;
    return `${p.year}-${p.month}-${p.day}`;
  }

  /** A `YYYY-MM-DD` date plus n days. */
  function addDays(date, n) {
    const [y, m, d] = date.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
  }

  /** A `YYYY-MM-DD` date as a Date at noon UTC, formatted in UTC (the calendar date itself). */
  function formatDate(date, options) {
    const [y, m, d] = date.split('-').map(Number);
    return new Intl.DateTimeFormat(undefined, { timeZone: 'UTC', ...options }).format(new Date(Date.UTC(y, m - 1, d, 12)));
  }

  function formatTime(iso, zone) {
    return new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: 'numeric', minute: '2-digit' }).format(new Date(iso));
  }

  function formatWhen(iso, zone) {
    return new Intl.DateTimeFormat(undefined, {
      timeZone: zone, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', hour: 'numeric', minute: '2-digit',
    }).format(new Date(iso));
  }

  function formatShortWhen(iso, zone) {
    return new Intl.DateTimeFormat(undefined, {
      timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit',
    }).format(new Date(iso));
  }

  function slotDate(slot, zone) {
    return /^\d{4}-\d{2}-\d{2}/.test(slot.localStartTime || '') ? slot.localStartTime.slice(0, 10) : dateIn(new Date(slot.startTime), zone);
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // The same shape rules as the API (api/src/domain/contact.rs); the API has the last word
  // (a phone number must also belong to a real numbering plan) and its messages are shown too.
  function emailProblem(input) {
    const s = input.trim();
    const bad = `'${input}' is not a valid email address`;
    if (s.length > 254) return 'email address is longer than 254 characters';
    const at = s.lastIndexOf('@');
    if (at < 0) return bad;
    const local = s.slice(0, at);
    const labels = s.slice(at + 1).split('.');
    const localOk = local.length > 0 && local.length <= 64 && local.split('.').every((p) => /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/.test(p));
    const domainOk =
      labels.length >= 2 &&
      labels.every((l) => l.length > 0 && l.length <= 63 && /^[A-Za-z0-9-]+$/.test(l) && !l.startsWith('-') && !l.endsWith('-')) &&
      /^[A-Za-z]{2,}$/.test(labels[labels.length - 1]);
    return localOk && domainOk ? null : bad;
  }

  function phoneProblem(input) {
    const s = input.trim();
    if (!s.startsWith('+')) return `'${input}' is not an international number: start with + and the country code, e.g. +39 06 1234 5678`;
    const bad = s.slice(1).match(/[^0-9 .()-]/);
    if (bad) return `'${input}' contains '${bad[0]}'; only digits, spaces, dots, dashes and parentheses are allowed after +`;
    const digits = s.slice(1).replace(/[^0-9]/g, '');
    if (digits.length < 8 || digits.length > 15) return `'${input}' has ${digits.length} digits; an E.164 number has 8 to 15 after the +`;
    if (digits[0] === '0') return `'${input}' is not E.164: a country code never starts with 0`;
    return null;
  }

  /** An RFC 5545 TEXT value, escaped. */
  function icsText(s) {
    return String(s).replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r?\n/g, '\\n');
  }

  /** Folds a content line at 75 octets (UTF-8), continuation lines start with a space. */
  function icsFold(line) {
    const enc = new TextEncoder();
    if (enc.encode(line).length <= 75) return line;
    const out = [];
    let cur = '';
    let size = 0;
    for (const ch of line) {
      const n = enc.encode(ch).length;
      if (size + n > (out.length ? 74 : 75)) {
        out.push(cur);
        cur = '';
        size = 0;
      }
      cur += ch;
      size += n;
    }
    out.push(cur);
    return out.join('\r\n ');
  }

  function icsStamp(iso) {
    return new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  }

  /** A one-event VCALENDAR; the UID is the one Quando's calendar feeds give the same event. */
  function icsFor(event, eventType) {
    const lines = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//Quando//Booking widget//EN',
      'CALSCALE:GREGORIAN',
      'METHOD:PUBLISH',
      'BEGIN:VEVENT',
      `UID:${String(event.id).replace(/-/g, '')}@quando`,
      `DTSTAMP:${icsStamp(new Date().toISOString())}`,
      `DTSTART:${icsStamp(event.startTime)}`,
      `DTEND:${icsStamp(event.endTime)}`,
      `SUMMARY:${icsText(eventType.name)}`,
    ];
    const location = event.location || eventType.location;
    if (location) lines.push(`LOCATION:${icsText(location)}`);
    lines.push('STATUS:CONFIRMED', 'END:VEVENT', 'END:VCALENDAR');
    return lines.map(icsFold).join('\r\n') + '\r\n';
  }

  // --- the element ---------------------------------------------------------------------------

  class QuandoBooking extends HTMLElement {
    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      this.started = false;
      this.seq = 0; // drops stale availability answers
      this.hold = null; // { id, calendarId, startTime, endTime, deadline }
      this.heldSlot = null; // the slot being held or booked
      this.submission = null; // { text, key }: one Idempotency-Key per hold and form contents
      this.busy = false;
      this.timer = 0;
      // Leaving the page frees the slot at once (a page kept in the back-forward cache keeps it).
      this.onPageHide = (e) => {
        if (!e.persisted) this.releaseHold(true);
      };
    }

    connectedCallback() {
      window.addEventListener('pagehide', this.onPageHide);
      if (this.started) return;
      this.started = true;
      this.key = this.dataset.key || '';
      this.eventTypeId = this.dataset.eventType || '';
      this.api = (this.dataset.api || API).replace(/\/+$/, '');
      this.zone = visitorZone();
      this.calendarZone = null;
      this.build();
      this.start();
    }

    disconnectedCallback() {
      window.removeEventListener('pagehide', this.onPageHide);
    }

    build() {
      this.titleEl = h('h2', { id: 'qb-title', text: 'Book an appointment' });
      this.meta = h('p', { class: 'meta' });
      this.zoneNote = h('p', { class: 'zone', hidden: true });
      this.status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
      this.body = h('div', { class: 'body' });
      this.root.replaceChildren(
        h('style', { text: CSS }),
        h('section', { class: 'qb', 'aria-labelledby': 'qb-title' }, this.titleEl, this.meta, this.zoneNote, this.status, this.body),
      );
    }

    /** Says something in the live region (errors styled as such). */
    say(message, isError) {
      this.status.classList.toggle('error', !!isError);
      // What the page already shows is only spoken; errors are shown as well.
      this.status.classList.toggle('sr', !isError);
      this.status.textContent = message || '';
    }

    sayError(r, prefix) {
      const msg = (r.error && r.error.message) || 'Something went wrong.';
      const id = r.requestId ? ` (request ${r.requestId})` : '';
      this.say(`${prefix ? prefix + ' ' : ''}${msg}${id}`, true);
    }

    view(...children) {
      this.body.replaceChildren(...children);
    }

    focusOn(el) {
      if (!el) return;
      if (!el.hasAttribute('tabindex') && !/^(BUTTON|INPUT|A)$/.test(el.tagName)) el.setAttribute('tabindex', '-1');
      el.focus({ preventScroll: false });
    }

    async call(method, path, body, headers) {
      const init = {
        method,
        mode: 'cors',
        credentials: 'omit',
        headers: { Accept: 'application/json', Authorization: `Bearer ${this.key}`, ...(headers || {}) },
      };
      if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await fetch(this.api + path, init);
      } catch (e) {
        return { status: 0, error: { code: 'network', message: 'The booking service could not be reached. Check your connection and try again.' } };
      }
      let json = null;
      if (res.status !== 204) {
        try {
          json = await res.json();
        } catch (e) {
          json = null;
        }
      }
      const requestId = res.headers.get('X-Request-Id') || (json && json.requestId) || null;
      if (res.ok) return { status: res.status, data: json ? json.data : null, body: json, requestId };
      const error = (json && json.error) || { code: `http_${res.status}`, message: `The booking service answered ${res.status}.` };
      return { status: res.status, error, requestId };
    }

    // --- start: the event type, then the first window of days ---

    async start() {
      this.view(h('p', { class: 'hint', text: 'Loading…' }));
      if (!this.key || !this.eventTypeId) {
        this.fatal('This booking widget is missing its data-key or data-event-type.');
        return;
      }
      const r = await this.call('GET', `/v1/calendar/event-types/${encodeURIComponent(this.eventTypeId)}`);
      if (r.error) {
        const why = r.status === 401 || r.status === 403 ? 'This booking widget is not allowed here:' : r.status === 404 ? 'This appointment type does not exist:' : 'The appointment type could not be loaded:';
        this.view();
        this.sayError(r, why);
        return;
      }
      this.eventType = r.data;
      this.titleEl.textContent = this.eventType.name;
      const meta = [`${this.eventType.durationMinutes} min`];
      if (this.eventType.location) meta.push(this.eventType.location);
      this.meta.textContent = meta.join(' · ');
      if (!this.eventType.active) {
        this.fatal('This appointment type is not taking bookings at the moment.');
        return;
      }
      // A team type (round-robin, collective) is booked on its hosts: Quando picks the calendar.
      if (!this.eventType.calendarId && this.eventType.assignment === 'single') {
        this.fatal('This appointment type has no calendar to book on.');
        return;
      }
      this.today = dateIn(new Date(), this.zone);
      this.from = this.today;
      await this.loadDays({ skip: 3 });
    }

    fatal(message) {
      this.view();
      this.say(message, true);
    }

    setZoneNote() {
      const differs = this.calendarZone && this.calendarZone !== this.zone;
      this.zoneNote.hidden = false;
      this.zoneNote.textContent = differs ? `Times in ${this.zone} · calendar in ${this.calendarZone}` : `Times in ${this.zone}`;
    }

    /** Loads the days of [from, from + WINDOW_DAYS) and shows them. */
    async loadDays(options) {
      const opts = options || {};
      const seq = ++this.seq;
      const to = addDays(this.from, WINDOW_DAYS);
      let dateFrom = `${this.from}T00:00:00`;
      const slots = [];
      let reason = null;
      for (let page = 0; page < MAX_AVAILABILITY_PAGES; page++) {
        const q = new URLSearchParams({
          eventTypeId: this.eventType.id,
          dateFrom,
          dateTo: `${to}T00:00:00`,
          timezone: this.zone,
        });
        if (this.eventType.calendarId) q.set('calendarId', this.eventType.calendarId);
        const r = await this.call('GET', `/v1/calendar/availability?${q}`);
        if (seq !== this.seq) return;
        if (r.error) {
          const fields = (r.error.details && r.error.details.fields) || [];
          if (r.status === 400 && this.zone !== 'UTC' && fields.some((f) => f.field === 'timezone')) {
            this.zone = 'UTC'; // a zone the browser knows and the API does not
            this.today = dateIn(new Date(), this.zone);
            this.from = this.today;
            return this.loadDays(opts);
          }
          this.view();
          this.sayError(r, 'The free times could not be loaded:');
          return;
        }
        if (r.data.calendarTimezone) this.calendarZone = r.data.calendarTimezone;
        slots.push(...(r.data.slots || []));
        reason = r.data.reason;
        if (!r.body.nextDateFrom) break;
        dateFrom = r.body.nextDateFrom;
      }
      this.setZoneNote();
      this.days = new Map();
      for (const s of slots) {
        const d = slotDate(s, this.zone);
        if (!this.days.has(d)) this.days.set(d, []);
        this.days.get(d).push(s);
      }
      this.reason = reason;
      if (!this.days.has(this.day)) this.day = null;
      // A first page with nothing free moves on by itself, for a few pages.
      if (this.days.size === 0 && opts.skip > 0 && reason !== 'beyond_max_advance') {
        this.from = addDays(this.from, WINDOW_DAYS);
        return this.loadDays({ ...opts, skip: opts.skip - 1 });
      }
      this.showDays(opts);
    }

    showDays(opts) {
      const o = opts || {};
      const to = addDays(this.from, WINDOW_DAYS - 1);
      const range = `${formatDate(this.from, { day: 'numeric', month: 'short' })} – ${formatDate(to, { day: 'numeric', month: 'short', year: 'numeric' })}`;
      const heading = h('h3', { id: 'qb-days', text: 'Pick a day' });
      const parts = [heading];
      if (this.days.size === 0) {
        parts.push(h('p', { text: `No free times between ${range}. ${NO_SLOTS[this.reason] || ''}`.trim() }));
      } else {
        parts.push(
          h(
            'ul',
            { class: 'days', 'aria-labelledby': 'qb-days' },
            Array.from(this.days, ([date, slots]) => {
              const count = `${slots.length} ${slots.length === 1 ? 'time' : 'times'}`;
              return h(
                'li',
                null,
                h(
                  'button',
                  {
                    type: 'button',
                    'data-date': date,
                    'aria-pressed': String(date === this.day),
                    onclick: () => this.pickDay(date),
                  },
                  h('span', { class: 'wd', text: formatDate(date, { weekday: 'short' }) }),
                  h('span', { class: 'day', text: formatDate(date, { day: 'numeric', month: 'short' }) }),
                  h('span', { class: 'count', text: count }),
                ),
              );
            }),
          ),
        );
      }
      parts.push(
        h(
          'div',
          { class: 'pager' },
          h('button', { type: 'button', class: 'link', 'aria-label': 'Earlier dates', disabled: this.from <= this.today, onclick: () => this.page(-1) }, '‹ Earlier'),
          h('span', { class: 'range', text: range }),
          h('button', { type: 'button', class: 'link', 'aria-label': 'Later dates', onclick: () => this.page(1) }, 'Later ›'),
        ),
      );
      this.slotsBox = h('div', { class: 'slotbox' });
      parts.push(this.slotsBox);
      this.view(...parts);
      if (this.day) this.showSlots(false);
      if (o.focus === 'days') this.focusOn(heading);
      if (o.focus === 'slots' && this.day) this.focusOn(this.slotsHeading);
    }

    page(direction) {
      const next = addDays(this.from, direction * WINDOW_DAYS);
      this.from = next < this.today ? this.today : next;
      this.day = null;
      this.say('Loading…');
      this.loadDays({ focus: 'days' }).then(() => {
        if (this.status.textContent === 'Loading…') this.say('');
      });
    }

    pickDay(date) {
      this.day = date;
      for (const b of this.body.querySelectorAll('.days button')) b.setAttribute('aria-pressed', String(b.dataset.date === date));
      this.showSlots(true);
    }

    showSlots(focus) {
      const slots = this.days.get(this.day) || [];
      this.slotsHeading = h('h3', { id: 'qb-slots', tabindex: '-1', text: `Times on ${formatDate(this.day, { weekday: 'long', day: 'numeric', month: 'long' })}` });
      this.slotsBox.replaceChildren(
        this.slotsHeading,
        h(
          'ul',
          { class: 'slots', 'aria-labelledby': 'qb-slots' },
          slots.map((s) =>
            h('li', null, h('button', { type: 'button', 'data-start': s.startTime, onclick: () => this.pick(s) }, formatTime(s.startTime, this.zone))),
          ),
        ),
      );
      if (focus) this.focusOn(this.slotsHeading);
    }

    setBusy(on) {
      this.busy = on;
      for (const b of this.body.querySelectorAll('.days button, .slots button, .next button')) b.disabled = on;
      this.setAttribute('aria-busy', String(on));
    }

    // --- holding a slot ---

    async pick(slot) {
      if (this.busy) return;
      this.setBusy(true);
      const label = formatShortWhen(slot.startTime, this.zone);
      this.say(`Holding ${label}…`);
      await this.releaseHold();
      const body = {
        calendarId: this.eventType.calendarId,
        eventTypeId: this.eventType.id,
        startTime: slot.startTime,
        endTime: slot.endTime,
        timezone: this.zone,
      };
      // A lost answer is retried with the same key: the server replays it and holds nothing twice.
      const key = randomId();
      let r;
      for (let attempt = 0; attempt < 3; attempt++) {
        r = await this.call('POST', '/v1/calendar/holds', body, { 'Idempotency-Key': key });
        if (r.status !== 0 && r.status < 500 && !(r.status === 409 && r.error.code === 'idempotency_in_progress')) break;
        await sleep(800 * (attempt + 1));
      }
      this.setBusy(false);
      if (r.status === 201 || r.status === 200) {
        const h0 = r.data;
        const local = Date.parse(h0.expiresAt) - Date.now();
        // A visitor's clock can be off: never count down longer than the hold can last.
        const ms = local > 0 && local <= (HOLD_TTL_SECONDS + 5) * 1000 ? local : HOLD_TTL_SECONDS * 1000;
        this.hold = { id: h0.id, calendarId: h0.calendarId, startTime: h0.startTime || slot.startTime, endTime: h0.endTime || slot.endTime, deadline: Date.now() + ms };
        this.heldSlot = slot;
        this.submission = null;
        this.showForm();
        return;
      }
      if (r.error && r.error.code === 'slot_unavailable') {
        this.showRefused(slot, r);
        return;
      }
      this.sayError(r, `${label} could not be held:`);
    }

    async releaseHold(onUnload) {
      const hold = this.hold;
      this.hold = null;
      this.stopTimer();
      if (!hold) return;
      const init = { method: 'DELETE', mode: 'cors', credentials: 'omit', headers: { Authorization: `Bearer ${this.key}` } };
      if (onUnload) {
        try {
          fetch(`${this.api}/v1/calendar/holds/${encodeURIComponent(hold.id)}`, { ...init, keepalive: true }).catch(() => {});
        } catch (e) {
          /* the hold expires by itself */
        }
        return;
      }
      await this.call('DELETE', `/v1/calendar/holds/${encodeURIComponent(hold.id)}`);
    }

    showRefused(slot, r) {
      const details = (r.error && r.error.details) || {};
      const next = Array.isArray(details.nextSlots) ? details.nextSlots : [];
      const reason = REASONS[details.reason] || r.error.message || 'This time cannot be booked.';
      const heading = h('h3', { tabindex: '-1', text: `${formatShortWhen(slot.startTime, this.zone)} is not available` });
      this.say(`${formatShortWhen(slot.startTime, this.zone)} is not available. ${reason}`);
      this.view(
        h(
          'div',
          { class: 'refused', 'data-reason': details.reason || '' },
          heading,
          h('p', { class: 'reason', text: reason }),
          next.length
            ? [
                h('p', { id: 'qb-next', text: 'The next free times:' }),
                h(
                  'ul',
                  { class: 'next', 'aria-labelledby': 'qb-next' },
                  next.map((s) => h('li', null, h('button', { type: 'button', 'data-start': s.startTime, onclick: () => this.pick(s) }, formatShortWhen(s.startTime, this.zone)))),
                ),
              ]
            : h('p', { text: 'There are no other free times soon.' }),
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'link', onclick: () => this.backToDays() }, 'See all days')),
        ),
      );
      this.focusOn(heading);
    }

    async backToDays() {
      await this.releaseHold();
      this.say('');
      await this.loadDays({ focus: this.day ? 'slots' : 'days' });
    }

    // --- the form, with the hold's countdown ---

    showForm() {
      const slot = this.hold;
      const field = (id, label, type, attrs, optional) =>
        h(
          'div',
          { class: 'field' },
          h('label', { for: id }, label, optional ? h('span', { class: 'opt', text: ' (optional)' }) : null),
          attrs.hint ? h('p', { class: 'hint', id: `${id}-hint`, text: attrs.hint }) : null,
          h('input', {
            id,
            name: id,
            type,
            autocomplete: attrs.autocomplete,
            inputmode: attrs.inputmode,
            required: !optional,
            'aria-required': optional ? null : 'true',
            'aria-describedby': attrs.hint ? `${id}-error ${id}-hint` : `${id}-error`,
            maxlength: attrs.maxlength,
            spellcheck: attrs.spellcheck,
          }),
          h('p', { class: 'ferr', id: `${id}-error` }),
        );
      const when = formatWhen(slot.startTime, this.zone);
      const end = formatTime(slot.endTime, this.zone);
      const calNote =
        this.calendarZone && this.calendarZone !== this.zone ? `${formatTime(slot.startTime, this.calendarZone)} in ${this.calendarZone}` : null;
      this.timerEl = h('span', { class: 'timer', role: 'timer', 'aria-live': 'off' });
      const heading = h('h3', { id: 'qb-details', tabindex: '-1', text: 'Your details' });
      this.bookButton = h('button', { type: 'submit', class: 'primary' }, 'Book');
      this.form = h(
        'form',
        { novalidate: true, 'aria-labelledby': 'qb-details', onsubmit: (e) => this.book(e) },
        field('qb-name', 'Name', 'text', { autocomplete: 'name', maxlength: 200 }),
        field('qb-email', 'Email', 'email', { autocomplete: 'email', maxlength: 254, spellcheck: 'false' }),
        field('qb-phone', 'Phone', 'tel', { autocomplete: 'tel', inputmode: 'tel', maxlength: 40, hint: 'With the country code, e.g. +39 06 1234 5678' }, true),
        h('div', { class: 'actions' }, this.bookButton, h('button', { type: 'button', class: 'link', onclick: () => this.backToDays() }, 'Choose another time')),
      );
      this.view(
        h(
          'div',
          { class: 'summary' },
          h('strong', { text: `${when} – ${end}` }),
          calNote ? h('span', { class: 'hint', text: `(${calNote})` }) : null,
          h('div', null, this.timerEl),
        ),
        heading,
        this.form,
      );
      this.startTimer();
      this.say(`${when} is held for you for ${Math.round((this.hold.deadline - Date.now()) / 60000)} minutes.`);
      this.focusOn(this.form.querySelector('#qb-name'));
    }

    startTimer() {
      this.stopTimer();
      this.warned = false;
      const tick = () => {
        if (!this.hold) return this.stopTimer();
        const left = Math.max(0, Math.ceil((this.hold.deadline - Date.now()) / 1000));
        const mm = Math.floor(left / 60);
        const ss = String(left % 60).padStart(2, '0');
        this.timerEl.textContent = `Held for you for ${mm}:${ss}`;
        this.timerEl.classList.toggle('low', left <= 60);
        if (left <= 60 && left > 0 && !this.warned) {
          this.warned = true;
          this.say('One minute left to finish booking.');
        }
        if (left === 0 && !this.submitting) this.expire();
      };
      tick();
      this.timer = setInterval(tick, 1000);
    }

    stopTimer() {
      if (this.timer) clearInterval(this.timer);
      this.timer = 0;
    }

    async expire() {
      const label = formatShortWhen(this.hold.startTime, this.zone);
      await this.releaseHold();
      await this.loadDays({ focus: this.day ? 'slots' : 'days' });
      this.say(`Your hold on ${label} expired. Pick a time again.`, true);
    }

    /** Shows each field's messages beside it (aria-invalid, described by the message); the
     *  ones of fields not on the form are returned. */
    fieldErrors(errors) {
      const ids = { customerName: 'qb-name', customerEmail: 'qb-email', customerPhone: 'qb-phone' };
      for (const id of Object.values(ids)) {
        this.form.querySelector(`#${id}`).removeAttribute('aria-invalid');
        this.form.querySelector(`#${id}-error`).textContent = '';
      }
      let first = null;
      const unplaced = [];
      for (const e of errors) {
        const id = ids[e.field];
        if (!id) {
          unplaced.push(`${e.field}: ${e.message}`);
          continue;
        }
        const input = this.form.querySelector(`#${id}`);
        const box = this.form.querySelector(`#${id}-error`);
        box.textContent = box.textContent ? `${box.textContent} ${e.message}` : e.message;
        input.setAttribute('aria-invalid', 'true');
        if (!first) first = input;
      }
      return { first, unplaced };
    }

    async book(ev) {
      ev.preventDefault();
      if (this.submitting || !this.hold) return; // a second click while the first is on its way
      const get = (id) => this.form.querySelector(`#${id}`).value.trim();
      const name = get('qb-name');
      const email = get('qb-email');
      const phone = get('qb-phone');
      const problems = [];
      if (!name) problems.push({ field: 'customerName', message: 'Enter your name.' });
      if (!email) problems.push({ field: 'customerEmail', message: 'Enter your email address.' });
      else if (emailProblem(email)) problems.push({ field: 'customerEmail', message: emailProblem(email) });
      if (phone && phoneProblem(phone)) problems.push({ field: 'customerPhone', message: phoneProblem(phone) });
      const shown = this.fieldErrors(problems);
      if (shown.first) {
        this.say(`Check the form: ${problems.map((p) => p.message).join(' ')}`, true);
        shown.first.focus();
        return;
      }
      const body = {
        calendarId: this.hold.calendarId,
        eventTypeId: this.eventType.id,
        startTime: this.hold.startTime,
        endTime: this.hold.endTime,
        timezone: this.zone,
        holdId: this.hold.id,
        customerName: name,
        customerEmail: email,
      };
      if (phone) body.customerPhone = phone;
      const text = JSON.stringify(body);
      // The same contents resend the same key (a retry books once); changed contents are a new request.
      if (!this.submission || this.submission.text !== text) this.submission = { text, key: randomId() };
      this.submitting = true;
      this.bookButton.disabled = true;
      this.bookButton.textContent = 'Booking…';
      this.say('Booking…');
      let r;
      for (let attempt = 0; attempt < 4; attempt++) {
        r = await this.call('POST', '/v1/calendar/events', body, { 'Idempotency-Key': this.submission.key });
        if (!(r.status === 409 && r.error.code === 'idempotency_in_progress') && r.status !== 0 && r.status < 500) break;
        await sleep(1000 * (attempt + 1));
      }
      this.submitting = false;
      if (r.status === 201 || r.status === 200) {
        this.done(r.data);
        return;
      }
      this.bookButton.disabled = false;
      this.bookButton.textContent = 'Book';
      if (r.error.code === 'slot_unavailable') {
        this.hold = null;
        this.stopTimer();
        this.showRefused(this.heldSlot || body, r);
        return;
      }
      const fields = (r.error.details && r.error.details.fields) || [];
      if (r.error.code === 'validation_error' && fields.length) {
        const placed = this.fieldErrors(fields);
        if (placed.first) placed.first.focus();
        if (placed.first) this.say(`Check the form: ${fields.map((f) => f.message).join(' ')}`, true);
        else this.say(`The booking did not go through: ${placed.unplaced.join('; ')}`, true);
        return;
      }
      if (r.status === 404 && r.error.code === 'not_found') {
        // The hold is gone: expired and taken, or released elsewhere.
        const label = formatShortWhen(this.hold.startTime, this.zone);
        this.hold = null;
        this.stopTimer();
        await this.loadDays({ focus: this.day ? 'slots' : 'days' });
        this.say(`${label} is no longer held for you. Pick a time again.`, true);
        return;
      }
      this.sayError(r, 'The booking did not go through:');
      if (this.hold && this.hold.deadline <= Date.now()) this.expire();
    }

    // --- booked ---

    done(event) {
      this.stopTimer();
      this.hold = null;
      this.submission = null;
      const ics = icsFor(event, this.eventType);
      const heading = h('h3', { tabindex: '-1', text: 'You are booked' });
      const zone = this.zone;
      const calNote = this.calendarZone && this.calendarZone !== zone ? ` (${formatTime(event.startTime, this.calendarZone)} in ${this.calendarZone})` : '';
      this.view(
        h(
          'div',
          { class: 'done', 'data-event-id': event.id },
          heading,
          h('p', null, h('strong', { text: this.eventType.name })),
          h('p', { class: 'when', text: `${formatWhen(event.startTime, zone)} – ${formatTime(event.endTime, zone)}${calNote}` }),
          event.location || this.eventType.location ? h('p', { text: event.location || this.eventType.location }) : null,
          h('p', { class: 'hint', text: `Booked for ${event.customerName || ''}${event.customerEmail ? ` <${event.customerEmail}>` : ''}` }),
          h(
            'div',
            { class: 'actions' },
            h('a', { class: 'ics', href: `data:text/calendar;charset=utf-8,${encodeURIComponent(ics)}`, download: 'booking.ics' }, 'Add to calendar (.ics)'),
            h('button', { type: 'button', class: 'link', onclick: () => this.again() }, 'Book another time'),
          ),
        ),
      );
      this.say(`Booked: ${formatWhen(event.startTime, zone)}.`);
      this.focusOn(heading);
    }

    again() {
      this.day = null;
      this.say('');
      this.loadDays({ focus: 'days' });
    }
  }

  if (!customElements.get(TAG)) customElements.define(TAG, QuandoBooking);

  // <script src=".../widget.js" data-key=... data-event-type=...>: mount right after the tag.
  if (me && me.dataset && me.dataset.key && me.dataset.eventType && !me.hasAttribute('data-quando-mounted')) {
    me.setAttribute('data-quando-mounted', '');
    const el = document.createElement(TAG);
    el.dataset.key = me.dataset.key;
    el.dataset.eventType = me.dataset.eventType;
    el.dataset.api = me.dataset.api || API;
    const mount = () => {
      if (me.parentNode && me.parentNode !== document.head && me.parentNode !== document.documentElement) me.after(el);
      else document.body.append(el);
    };
    if (me.parentNode === document.head && !document.body) document.addEventListener('DOMContentLoaded', mount, { once: true });
    else mount();
  }
})();

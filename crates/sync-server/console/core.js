// The console's shared code: the API client, messages (zh-CN / English), small DOM and
// table helpers, CSV export. Plain ES modules: no build step. Every number a page shows
// comes from the same /v1 API that handsets and integrators use; the browser's session
// cookie stands in for the Bearer token, and every request that changes something carries
// the CSRF token (cookie `ps_csrf`, echoed in the `X-CSRF-Token` header).

const MESSAGES = { zh: {}, en: {} };

/** Adds a page's messages: `{ zh: { key: "…" }, en: { key: "…" } }`. */
export function registerMessages(m) {
  for (const l of ["zh", "en"]) Object.assign(MESSAGES[l], m[l] || {});
}

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

/** "zh" (default) or "en", from the `ps_lang` cookie. */
export function lang() {
  return cookie("ps_lang") === "en" ? "en" : "zh";
}

/** The message for `key` in the current language; `{name}` placeholders from `vars`. */
export function t(key, vars = {}) {
  const s = MESSAGES[lang()][key] ?? MESSAGES.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? `{${k}}`));
}

export function csrfToken() {
  return cookie("ps_csrf") || "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/**
 * Calls the API. `opts.query` is an object of query parameters (null/undefined/"" left
 * out), `opts.body` is sent as JSON. Answers the parsed JSON (or text for non-JSON).
 * A 401 sends the browser to the login page; other errors throw `ApiError` with the
 * problem+json body.
 */
export async function api(path, opts = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const method = opts.method || "GET";
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const resp = await fetch(url, { method, headers, body, credentials: "same-origin" });
  if (resp.status === 401) {
    location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, null);
  }
  const type = resp.headers.get("content-type") || "";
  const data = resp.status === 204 ? null : type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, typeof data === "object" ? data : { detail: data });
  return data;
}

let meCache;
/** `GET /v1/me`, once per page. */
export function me() {
  meCache ??= api("/v1/me");
  return meCache;
}

export const CONSOLE_ROLES = ["supervisor", "manager", "admin"];

/**
 * The estate this page shows: `?estate=` if the caller oversees it, else the first estate
 * where the caller is a supervisor, manager or admin. `{ id, name, timezone, roles }`.
 */
export async function currentEstate() {
  const m = await me();
  const mine = m.estates.filter((e) => e.roles.some((r) => CONSOLE_ROLES.includes(r)));
  const want = new URLSearchParams(location.search).get("estate");
  return mine.find((e) => e.id === want) || mine[0] || null;
}

/** Has the caller one of `roles` in the estate? */
export function hasRole(estate, ...roles) {
  return estate.roles.some((r) => roles.includes(r));
}

/** A link to another console page that keeps the chosen estate. */
export function pageHref(path, estate, params = {}) {
  const u = new URLSearchParams({ estate: estate.id, ...params });
  return `${path}?${u}`;
}

/**
 * A tiny element builder: `h("a", { href, class: "x", onclick }, "text", child)`.
 * Strings become text nodes (never HTML), so API data cannot inject markup.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Formats a UTC instant (ms or RFC 3339) in the estate's time zone: "2026-12-07 03:40". */
export function fmtTime(v, timezone, withSeconds = false) {
  if (v === undefined || v === null || v === "") return "";
  const d = typeof v === "number" ? new Date(v) : new Date(v);
  if (isNaN(d)) return String(v);
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: withSeconds ? "2-digit" : undefined, hourCycle: "h23",
  }).formatToParts(d);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${withSeconds ? ":" + p.second : ""}`;
}

/** Today's date (YYYY-MM-DD) in the estate's time zone, `offsetDays` from today. */
export function localDate(timezone, offsetDays = 0) {
  const d = new Date(Date.now() + offsetDays * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone || undefined }).format(d);
}

/** Adds a page's own stylesheet once (`<style id>` in the head). */
export function addPageStyle(id, css) {
  if (!document.getElementById(id)) document.head.append(h("style", { id }, css));
}

/** "2026-12-06" plus n days (calendar arithmetic, no time zone involved). */
export function addDays(date, n) {
  const d = new Date(date + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** A real calendar date written YYYY-MM-DD. */
export const isDate = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && !isNaN(Date.parse(s + "T00:00:00Z"));

/** The last 8 characters of an id (UUIDv7s made together share their first ones). */
export function shortId(id) {
  return id ? "…" + String(id).slice(-8) : "";
}

/** Member id → name, from GET /v1/estates/{id}/members (empty if it fails). */
export async function memberNames(eid) {
  try {
    const r = await api(`/v1/estates/${eid}/members`);
    return new Map(r.members.map((m) => [m.id, m.name]));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    return new Map();
  }
}

/** An error's text: the problem's detail, then its field errors. */
export function errorText(e) {
  const p = e instanceof ApiError ? e.problem : null;
  const extra = p && Array.isArray(p.errors) ? p.errors.map((x) => `${x.path}: ${x.message}`).join("; ") : "";
  return [e.message || String(e), extra].filter(Boolean).join(" — ");
}

/** Puts `params` into the address bar's query (empty values removed), without a reload. */
export function setParams(params) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  history.replaceState(null, "", u);
}

/** 0.8734 → "87.3%"; null → "—". */
export function pct(x) {
  return x === null || x === undefined || isNaN(x) ? "—" : (x * 100).toFixed(1) + "%";
}

/**
 * One CSV cell, as the server writes them (http/csv.rs): a leading `=`, `+`, `-`, `@`, tab
 * or carriage return is defused with `'` so a spreadsheet does not run it as a formula
 * (a hazard titled `=HYPERLINK(…)`), then quoted when it holds a comma, quote or line
 * break. Numbers are numbers, so a negative offset stays a number.
 */
export function csvCell(v) {
  if (typeof v === "number") return String(v);
  let s = v === null || v === undefined ? "" : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** Downloads rows as a CSV file (UTF-8 with BOM, so Excel shows Chinese correctly). */
export function downloadCsv(filename, header, rows) {
  const text = "\ufeff" + [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}

/**
 * A table with a CSV button. `columns`: `[{ label, value: row => text, render?: row => Node }]`.
 * The CSV holds exactly the rows and values shown, unless `csvHref` names the API's own
 * CSV export for the same query.
 */
export function table({ id, columns, rows, csvName, csvHref, empty, rowClass }) {
  const csvButton = csvHref
    ? h("a", { class: "csv", href: csvHref, download: "" }, t("core.csv"))
    : h("button", { type: "button", class: "csv", onclick: () =>
        downloadCsv(csvName || `${id || "table"}.csv`, columns.map((c) => c.label), rows.map((r) => columns.map((c) => c.value(r)))) }, t("core.csv"));
  const tbl = h("table", { id, class: "data" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.label)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty || t("core.empty")))
      : rows.map((r) => h("tr", { class: rowClass ? rowClass(r) : null }, columns.map((c) => h("td", {}, c.render ? c.render(r) : c.value(r)))))));
  return h("div", { class: "table-wrap" }, h("div", { class: "table-tools" }, csvButton), tbl);
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** Shows an error where the page would be. */
export function showError(e) {
  const main = document.getElementById("main");
  main.replaceChildren(h("div", { class: "error", role: "alert" }, t("core.error"), ": ", e.message || String(e)));
}

/** Runs a page: fills the header (nav, estate, language) and calls `render(estate, main)`. */
export async function runPage(render) {
  applyStaticMessages();
  try {
    const estate = await currentEstate();
    const main = document.getElementById("main");
    if (!estate) {
      main.replaceChildren(h("div", { class: "error" }, t("core.no_estate")));
      return;
    }
    decorateNav(estate);
    await render(estate, main);
    document.body.dataset.ready = "1";
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showError(e);
    document.body.dataset.ready = "1";
  }
}

/** Fills the shell's `[data-i18n]` elements and the language switch. */
export function applyStaticMessages() {
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const sw = document.getElementById("lang-switch");
  if (sw) {
    sw.textContent = lang() === "en" ? "中文" : "English";
    sw.onclick = () => {
      document.cookie = `ps_lang=${lang() === "en" ? "zh" : "en"}; Path=/console; Max-Age=31536000; SameSite=Lax`;
      location.reload();
    };
  }
}

async function decorateNav(estate) {
  const m = await me();
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    a.href = pageHref(a.getAttribute("href").split("?")[0], estate);
  }
  const who = document.getElementById("who");
  if (who) who.textContent = `${m.user.name} · ${estate.name}`;
  const picker = document.getElementById("estate-picker");
  const mine = m.estates.filter((e) => e.roles.some((r) => CONSOLE_ROLES.includes(r)));
  if (picker && mine.length > 1) {
    picker.replaceChildren(...mine.map((e) => h("option", { value: e.id, selected: e.id === estate.id }, e.name)));
    picker.hidden = false;
    picker.onchange = () => {
      const u = new URL(location.href);
      u.searchParams.set("estate", picker.value);
      location.href = u;
    };
  }
}

registerMessages({
  zh: {
    "nav.overview": "概览", "nav.coverage": "巡更覆盖", "nav.missed": "漏巡与告警",
    "nav.hazards": "隐患看板", "nav.devices": "设备", "nav.logout": "退出登录",
    "core.csv": "导出 CSV", "core.empty": "暂无数据", "core.error": "出错了",
    "core.no_estate": "你的账号在任何小区都没有主管、经理或管理员角色。", "core.loading": "加载中…",
  },
  en: {
    "nav.overview": "Overview", "nav.coverage": "Coverage", "nav.missed": "Missed visits & alerts",
    "nav.hazards": "Hazard board", "nav.devices": "Devices", "nav.logout": "Sign out",
    "core.csv": "Export CSV", "core.empty": "Nothing to show", "core.error": "Something went wrong",
    "core.no_estate": "Your account is not a supervisor, manager or admin of any estate.", "core.loading": "Loading…",
  },
});

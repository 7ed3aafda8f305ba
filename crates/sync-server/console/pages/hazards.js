// Hazard board (隐患看板): one column per state of the hazard state machine, in workflow
// order, each ticket a card; filters by grade, category, assignee and zone; a plain table
// view; CSV from the API's own export with the same filters.
//
// API: GET /v1/hazards?estate_id=&state=&grade=&category=&assignee=&overdue=&limit=
// (one request per state column, newest report first; grade, category, assignee and
// overdue are filtered by the API), GET /v1/estates/{id}/members (names, the engineers
// for the assignee filter), GET /v1/estates/{id}/zones and /checkpoints (zone
// names; the zone filter is the list API's `zone`: the zone named in a ticket's location
// or the zone of its checkpoint),
// GET /v1/hazards.csv with the same filters for the CSV.

import { runPage, api, t, h, table, section, registerMessages, fmtTime, pageHref, lang, addPageStyle } from "../core.js";

/** The states of shared-core's hazard state machine (hazard::HazardState::ALL), in workflow order. */
const STATES = ["reported", "assigned", "in_rectification", "extension_requested", "pending_verification", "closed", "cancelled"];
/** Tickets shown per column; the table view and the CSV export say when there are more. */
const COLUMN_LIMIT = 200;
/** Known categories (demo data and /work/shared/GLOSSARY.md); others show as written. */
const CATEGORIES = ["fire", "electrical", "equipment", "access", "security", "structural", "e_bike"];

registerMessages({
  zh: {
    "hazards.title": "隐患看板",
    "hazards.filter.grade": "等级", "hazards.filter.category": "类别", "hazards.filter.assignee": "整改责任人",
    "hazards.filter.zone": "区域", "hazards.filter.overdue": "只看逾期", "hazards.filter.all": "全部",
"hazards.filter.clear": "清除筛选",
    "hazards.view.board": "看板", "hazards.view.table": "列表", "hazards.ledger": "隐患整改台账（按上报时间，最新在前）",
    "hazards.summary": "共 {n} 张隐患单，未闭环 {open}，逾期 {overdue}",
    "hazards.more": "只显示最新 {n} 张，完整列表请导出 CSV",
    "hazards.empty_column": "无",
    "hazards.overdue": "已逾期", "hazards.due": "期限", "hazards.unassigned": "未指派",
    "hazards.col.code": "编号", "hazards.col.title": "隐患名称", "hazards.col.state": "状态",
    "hazards.col.grade": "等级", "hazards.col.category": "类别", "hazards.col.zone": "区域",
    "hazards.col.location": "位置", "hazards.col.reported_at": "上报时间", "hazards.col.assignee": "整改责任人",
    "hazards.col.due": "整改期限", "hazards.col.overdue": "逾期", "hazards.yes": "是", "hazards.no": "否",
    "hazards.user": "用户 {id}",
    "hazards.state.reported": "已上报", "hazards.state.assigned": "已指派", "hazards.state.in_rectification": "整改中",
    "hazards.state.extension_requested": "延期申请中", "hazards.state.pending_verification": "待复查验收",
    "hazards.state.closed": "已验收销号", "hazards.state.cancelled": "已撤销",
    "hazards.grade.general": "一般隐患", "hazards.grade.major": "重大隐患",
    "hazards.cat.fire": "消防", "hazards.cat.electrical": "电气", "hazards.cat.equipment": "设备",
    "hazards.cat.access": "出入口", "hazards.cat.security": "安防", "hazards.cat.structural": "建筑",
    "hazards.cat.e_bike": "电动车",
  },
  en: {
    "hazards.title": "Hazard board",
    "hazards.filter.grade": "Grade", "hazards.filter.category": "Category", "hazards.filter.assignee": "Assignee",
    "hazards.filter.zone": "Zone", "hazards.filter.overdue": "Overdue only", "hazards.filter.all": "All",
"hazards.filter.clear": "Clear filters",
    "hazards.view.board": "Board", "hazards.view.table": "Table", "hazards.ledger": "Hazard ledger (newest report first)",
    "hazards.summary": "{n} tickets, {open} open, {overdue} overdue",
    "hazards.more": "Newest {n} shown; export the CSV for the complete list",
    "hazards.empty_column": "None",
    "hazards.overdue": "Overdue", "hazards.due": "Due", "hazards.unassigned": "Not assigned",
    "hazards.col.code": "No.", "hazards.col.title": "Title", "hazards.col.state": "State",
    "hazards.col.grade": "Grade", "hazards.col.category": "Category", "hazards.col.zone": "Zone",
    "hazards.col.location": "Location", "hazards.col.reported_at": "Reported", "hazards.col.assignee": "Assignee",
    "hazards.col.due": "Due", "hazards.col.overdue": "Overdue", "hazards.yes": "yes", "hazards.no": "no",
    "hazards.user": "user {id}",
    "hazards.state.reported": "Reported", "hazards.state.assigned": "Assigned", "hazards.state.in_rectification": "In rectification",
    "hazards.state.extension_requested": "Extension requested", "hazards.state.pending_verification": "Pending verification",
    "hazards.state.closed": "Closed", "hazards.state.cancelled": "Cancelled",
    "hazards.grade.general": "General", "hazards.grade.major": "Major",
    "hazards.cat.fire": "Fire", "hazards.cat.electrical": "Electrical", "hazards.cat.equipment": "Equipment",
    "hazards.cat.access": "Access", "hazards.cat.security": "Security", "hazards.cat.structural": "Structure",
    "hazards.cat.e_bike": "E-bikes",
  },
});

const CSS = `
.hz-board { display: grid; grid-template-columns: repeat(7, minmax(170px, 1fr)); gap: 8px; overflow-x: auto; align-items: start; }
.hz-board .column { background: #eceff4; border-radius: 6px; padding: 6px; min-height: 80px; }
.hz-board .column h2 { font-size: 13px; margin: 2px 4px 6px; display: flex; justify-content: space-between; }
.hz-board .column h2 .n { color: var(--muted); font-weight: 400; }
a.ticket-card { display: block; background: #fff; border: 1px solid var(--line); border-left: 4px solid #9aa4b8; border-radius: 4px;
  padding: 6px 8px; margin-bottom: 6px; color: inherit; text-decoration: none; }
a.ticket-card:hover { border-color: var(--accent); }
a.ticket-card.major { border-left-color: var(--missed); }
a.ticket-card.overdue { background: #fdecec; border-color: #f0a8a8; }
a.ticket-card .t { font-weight: 600; overflow-wrap: anywhere; }
a.ticket-card .m { font-size: 12px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 2px 8px; }
a.ticket-card .od { color: #b42318; font-weight: 600; }
.hz-more { font-size: 12px; color: var(--muted); margin: 2px 4px; }
.badge.g-major { background: var(--missed); color: #fff; } .badge.g-general { background: #e4e7ee; }
.hz-view button[aria-pressed="true"] { font-weight: 700; }
tr.overdue td { background: #fdecec; }
#hazard-table td:first-child, #hazard-table td:nth-child(8), #hazard-table td:nth-child(10) { white-space: nowrap; }
`;

const stateLabel = (s) => t(`hazards.state.${s}`);
const gradeLabel = (g) => t(`hazards.grade.${g}`);
function categoryLabel(c) {
  const k = `hazards.cat.${c}`;
  const s = t(k);
  return s === k ? c : s;
}

/** A user's name from the estate's members; an id not among them shows its last digits. */
function userLabel(id, names) {
  if (!id) return "";
  return names.get(id) || t("hazards.user", { id: id.slice(-6) });
}

/** The page's parameters from the URL: filters and view. */
function readParams() {
  const q = new URLSearchParams(location.search);
  return {
    grade: q.get("grade") || "", category: q.get("category") || "", assignee: q.get("assignee") || "",
    zone: q.get("zone") || "", overdue: q.get("overdue") === "true" ? "true" : "", view: q.get("view") === "table" ? "table" : "board",
  };
}

/** Every page of `GET /v1/hazards` for a query, up to `max` tickets; `more` when cut. */
async function fetchTickets(query, max) {
  const out = [];
  let before = null;
  for (;;) {
    const limit = Math.min(1000, max - out.length);
    const page = await api("/v1/hazards", { query: { ...query, limit, before } });
    out.push(...page.hazards);
    if (!page.next_before) return { tickets: out, more: false };
    if (out.length >= max) return { tickets: out, more: true };
    before = page.next_before;
  }
}

let renderSeq = 0;
let rerender = () => {};

runPage(async (estate, main) => {
  addPageStyle("hazards-css", CSS);
  rerender = async () => {
    document.body.dataset.ready = "0";
    try {
      await render(estate, main);
    } catch (e) {
      main.replaceChildren(h("div", { class: "error", role: "alert" }, t("core.error"), ": ", e.message || String(e)));
    } finally {
      document.body.dataset.ready = "1";
    }
  };
  window.addEventListener("popstate", () => rerender());
  await render(estate, main);
});

async function render(estate, main) {
  const seq = ++renderSeq;
  const p = readParams();
  const apiFilters = { estate_id: estate.id, grade: p.grade, category: p.category, overdue: p.overdue };
  if (p.assignee) apiFilters.assignee = p.assignee;
  if (p.zone) apiFilters.zone = p.zone;
  const [members, zones, checkpoints, columns] = await Promise.all([
    api(`/v1/estates/${estate.id}/members`).then((r) => r.members).catch(() => []),
    api(`/v1/estates/${estate.id}/zones`).then((r) => r.items).catch(() => []),
    api(`/v1/estates/${estate.id}/checkpoints`).then((r) => r.items).catch(() => []),
    Promise.all(STATES.map((state) => fetchTickets({ ...apiFilters, state }, COLUMN_LIMIT))),
  ]);
  const all = columns.flatMap((c) => c.tickets);
  if (seq !== renderSeq) return;
  const names = new Map(members.map((u) => [u.id, u.name]));
  const zoneName = new Map(zones.map((z) => [z.id, z.name || z.code]));
  const cpZone = new Map(checkpoints.map((c) => [c.id, c.zone_id]));
  const zoneOf = (tk) => tk.location?.zone_id || (tk.location?.checkpoint_id && cpZone.get(tk.location.checkpoint_id)) || null;
  const byState = new Map();
  STATES.forEach((s, i) => {
    byState.set(s, { tickets: columns[i].tickets, more: columns[i].more });
  });
  const shown = STATES.flatMap((s) => byState.get(s).tickets);

  // Filter choices.
  // Assignees: the estate's engineers, and anyone tickets are assigned to.
  const assignees = [...new Set([...members.filter((u) => u.roles.includes("engineer")).map((u) => u.id), ...all.map((tk) => tk.assignee)].filter(Boolean))];
  if (p.assignee && !assignees.includes(p.assignee)) assignees.push(p.assignee);
  const categories = [...new Set([...CATEGORIES, ...all.map((tk) => tk.category), p.category].filter(Boolean))];

  const go = (changes) => {
    const u = new URL(location.href);
    for (const [k, v] of Object.entries(changes)) {
      if (v) u.searchParams.set(k, v);
      else u.searchParams.delete(k);
    }
    history.pushState(null, "", u);
    rerender();
  };
  const select = (id, key, label, options) =>
    h("label", {}, label,
      h("select", { id, onchange: (e) => go({ [key]: e.target.value }) },
        h("option", { value: "" }, t("hazards.filter.all")),
        options.map(([v, text]) => h("option", { value: v, selected: p[key] === v }, text))));

  const csvHref = "/v1/hazards.csv?" + new URLSearchParams([...Object.entries(apiFilters).filter(([, v]) => v), ["bom", "1"]]);
  const toolbar = h("div", { class: "toolbar" },
    select("filter-grade", "grade", t("hazards.filter.grade"), [["general", gradeLabel("general")], ["major", gradeLabel("major")]]),
    select("filter-category", "category", t("hazards.filter.category"), categories.map((c) => [c, categoryLabel(c)])),
    select("filter-assignee", "assignee", t("hazards.filter.assignee"),
      assignees.map((a) => [a, userLabel(a, names)])),
    select("filter-zone", "zone", t("hazards.filter.zone"), zones.map((z) => [z.id, z.name || z.code])),
    h("label", {}, h("input", { type: "checkbox", id: "filter-overdue", checked: p.overdue === "true",
      onchange: (e) => go({ overdue: e.target.checked ? "true" : "" }) }), t("hazards.filter.overdue")),
    (p.grade || p.category || p.assignee || p.zone || p.overdue)
      ? h("button", { type: "button", id: "filter-clear", onclick: () => go({ grade: "", category: "", assignee: "", zone: "", overdue: "" }) }, t("hazards.filter.clear"))
      : null,
    h("span", { class: "spacer", style: "flex:1" }),
    h("span", { class: "hz-view" },
      h("button", { type: "button", id: "view-board", "aria-pressed": String(p.view === "board"), onclick: () => go({ view: "" }) }, t("hazards.view.board")),
      " ",
      h("button", { type: "button", id: "view-table", "aria-pressed": String(p.view === "table"), onclick: () => go({ view: "table" }) }, t("hazards.view.table"))),
    p.view === "table" ? null : h("a", { class: "csv", id: "hazards-csv", href: csvHref, download: "" }, t("core.csv")));

  const open = shown.filter((tk) => tk.state !== "closed" && tk.state !== "cancelled").length;
  const overdue = shown.filter((tk) => tk.overdue).length;
  const ticketHref = (tk) => pageHref(`/console/hazards/${encodeURIComponent(tk.id)}`, estate);
  const dueText = (tk) => fmtTime(tk.due_at, estate.timezone);

  let body;
  if (p.view === "table") {
    const columnsDef = [
      { label: t("hazards.col.code"), value: (tk) => tk.code, render: (tk) => h("a", { href: ticketHref(tk), class: "ticket-link", "data-id": tk.id }, tk.code || tk.id.slice(-6)) },
      { label: t("hazards.col.title"), value: (tk) => tk.title },
      { label: t("hazards.col.state"), value: (tk) => stateLabel(tk.state) },
      { label: t("hazards.col.grade"), value: (tk) => gradeLabel(tk.grade) },
      { label: t("hazards.col.category"), value: (tk) => categoryLabel(tk.category) },
      { label: t("hazards.col.zone"), value: (tk) => zoneName.get(zoneOf(tk)) || "" },
      { label: t("hazards.col.location"), value: (tk) => tk.location?.text || "" },
      { label: t("hazards.col.reported_at"), value: (tk) => fmtTime(tk.reported_at, estate.timezone) },
      { label: t("hazards.col.assignee"), value: (tk) => userLabel(tk.assignee, names) },
      { label: t("hazards.col.due"), value: dueText },
      { label: t("hazards.col.overdue"), value: (tk) => (tk.overdue ? t("hazards.yes") : t("hazards.no")) },
    ];
    const rows = [...shown].sort((a, b) => (a.reported_at < b.reported_at ? 1 : -1));
    body = section(t("hazards.ledger"), table({ id: "hazard-table", columns: columnsDef, rows, csvHref, rowClass: (tk) => (tk.overdue ? "overdue" : null) }));
  } else {
    body = h("div", { class: "hz-board", id: "board" }, STATES.map((s) => {
      const { tickets, more } = byState.get(s);
      return h("div", { class: "column", "data-state": s },
        h("h2", {}, stateLabel(s), h("span", { class: "n" }, String(tickets.length) + (more ? "+" : ""))),
        tickets.length === 0 ? h("div", { class: "hz-more" }, t("hazards.empty_column")) : null,
        tickets.map((tk) => card(tk)),
        more ? h("div", { class: "hz-more" }, t("hazards.more", { n: COLUMN_LIMIT })) : null);
    }));
  }

  function card(tk) {
    const cls = ["ticket-card", tk.grade === "major" ? "major" : "", tk.overdue ? "overdue" : ""].filter(Boolean).join(" ");
    return h("a", { class: cls, "data-id": tk.id, "data-state": tk.state, href: ticketHref(tk) },
      h("div", { class: "t" }, tk.title),
      h("div", { class: "m" },
        h("span", {}, tk.code),
        h("span", { class: `badge g-${tk.grade}` }, gradeLabel(tk.grade)),
        h("span", {}, categoryLabel(tk.category)),
        zoneOf(tk) && zoneName.get(zoneOf(tk)) ? h("span", {}, zoneName.get(zoneOf(tk))) : null),
      h("div", { class: "m" },
        h("span", { class: "assignee" }, tk.assignee ? userLabel(tk.assignee, names) : t("hazards.unassigned")),
        tk.state !== "closed" && tk.state !== "cancelled" ? h("span", { class: "due" }, `${t("hazards.due")} ${dueText(tk)}`) : null,
        tk.overdue ? h("span", { class: "od" }, t("hazards.overdue")) : null));
  }

  main.replaceChildren(...[
    h("h1", {}, t("hazards.title")),
    toolbar,
    h("p", { class: "muted", id: "hazards-summary" }, t("hazards.summary", { n: shown.length, open, overdue })),
    body].filter(Boolean));
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
}

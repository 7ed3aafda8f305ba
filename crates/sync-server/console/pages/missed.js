// Missed visits and alerts: the missed (and late) slots of a period, each linked to its
// heat-map cell and excusable with a reason; the estate's alerts, closable with a comment.
//
// API: GET /v1/estates/{id}/slots?from=&to=&status= (slots.csv for CSV);
// POST /v1/estates/{id}/slots/excuse {rule_id, checkpoint_id, slot_start, reason};
// GET /v1/estates/{id}/alerts?open=&limit=; POST /v1/alerts/{id}/close {comment}.

import {
  runPage, api, t, h, table, section, registerMessages, fmtTime, localDate, pageHref, hasRole, me, ApiError,
  addPageStyle, addDays, shortId, memberNames, errorText, setParams, isDate,
} from "../core.js";

const SLOT_LIMIT = 2000;
const ALERT_LIMIT = 500;
const GLYPH = { on_time: "✓", late: "!", early: "‹", missed: "✕", excused: "–", pending: "…" };

registerMessages({
  zh: {
    "missed.title": "漏巡与告警",
    "missed.slots": "漏巡与迟到",
    "missed.from": "从",
    "missed.to": "到",
    "missed.show": "显示",
    "missed.apply": "查询",
    "missed.status.on_time": "准时",
    "missed.status.late": "迟到",
    "missed.status.early": "早到",
    "missed.status.missed": "漏巡",
    "missed.status.excused": "已豁免",
    "missed.status.pending": "待定",
    "missed.period_note": "{from} 至 {to}（含），小区当地时间（{tz}）。共 {n} 条：漏巡 {missed}，迟到 {late}，已豁免 {excused}。",
    "missed.truncated": "结果太多，只显示前 {n} 条；请缩短时间段。",
    "missed.bad_period": "开始日期不能晚于结束日期。",
    "missed.need_status": "请至少选择一种结果。",
    "missed.col.window": "应巡时段",
    "missed.col.checkpoint": "巡更点",
    "missed.col.rule": "规则",
    "missed.col.status": "结果",
    "missed.col.scan": "扫描时间",
    "missed.col.guard": "保安",
    "missed.col.excuse": "豁免",
    "missed.window_fmt": "{start}–{end}",
    "missed.excuse": "豁免",
    "missed.excuse_reason": "豁免原因",
    "missed.excuse_placeholder": "例如：该区域停电检修，无法进入",
    "missed.excuse_submit": "确认豁免",
    "missed.cancel": "取消",
    "missed.excused_by": "{by}，{at}",
    "missed.no_slots": "这段时间没有漏巡或迟到。",
    "missed.you": "{name}（我）",
    "missed.alerts": "告警",
    "missed.open_only": "只看未关闭",
    "missed.alerts_note": "共 {n} 条，未关闭 {open} 条。",
    "missed.alerts_more": "只显示最新的 {n} 条。",
    "missed.col.raised": "时间",
    "missed.col.kind": "类型",
    "missed.col.subject": "内容",
    "missed.col.target": "通知对象",
    "missed.col.state": "状态",
    "missed.col.action": "处理",
    "missed.kind.missed_visit": "漏巡",
    "missed.kind.hazard_escalation": "隐患整改期限提醒",
    "missed.target.assignee": "整改责任人",
    "missed.target.supervisor": "主管",
    "missed.target.manager": "项目经理",
    "missed.alert_slot": "{checkpoint}，{start}–{end}",
    "missed.alert_hazard": "{code} {title}",
    "missed.alert_due": "整改期限 {due}，已用时限 {p}%",
    "missed.alert_overdue": "整改期限 {due}，已到期",
    "missed.open": "未关闭",
    "missed.closed": "已关闭",
    "missed.closed_by": "{by} 于 {at} 关闭：{comment}",
    "missed.close": "关闭",
    "missed.close_comment": "处理说明",
    "missed.close_placeholder": "说明做了什么处理",
    "missed.close_submit": "确认关闭",
    "missed.no_alerts": "没有告警。",
    "missed.required": "请填写。",
    "missed.saving": "提交中…",
    "missed.error": "加载失败：{detail}",
    "missed.err_fmt": "{msg}（{detail}）",
    "missed.err.excuse.403": "你没有豁免的权限",
    "missed.err.excuse.404": "找不到这个应巡时段",
    "missed.err.excuse.409": "这个时段已经豁免过了",
    "missed.err.excuse.422": "豁免原因不符合要求",
    "missed.err.close.403": "你没有关闭这条告警的权限",
    "missed.err.close.404": "找不到这条告警",
    "missed.err.close.409": "这条告警已经关闭了",
    "missed.err.close.422": "处理说明不符合要求",
  },
  en: {
    "missed.title": "Missed visits & alerts",
    "missed.slots": "Missed and late visits",
    "missed.from": "From",
    "missed.to": "to",
    "missed.show": "Show",
    "missed.apply": "Show",
    "missed.status.on_time": "On time",
    "missed.status.late": "Late",
    "missed.status.early": "Early",
    "missed.status.missed": "Missed",
    "missed.status.excused": "Excused",
    "missed.status.pending": "Pending",
    "missed.period_note": "{from} to {to} inclusive, estate local time ({tz}). {n} slots: {missed} missed, {late} late, {excused} excused.",
    "missed.truncated": "Too many results: only the first {n} are shown; choose a shorter period.",
    "missed.bad_period": "The start date must not be after the end date.",
    "missed.need_status": "Choose at least one result.",
    "missed.col.window": "Slot",
    "missed.col.checkpoint": "Checkpoint",
    "missed.col.rule": "Rule",
    "missed.col.status": "Result",
    "missed.col.scan": "Scanned at",
    "missed.col.guard": "Guard",
    "missed.col.excuse": "Excuse",
    "missed.window_fmt": "{start}–{end}",
    "missed.excuse": "Excuse",
    "missed.excuse_reason": "Reason",
    "missed.excuse_placeholder": "e.g. the area was closed for repairs",
    "missed.excuse_submit": "Excuse slot",
    "missed.cancel": "Cancel",
    "missed.excused_by": "{by}, {at}",
    "missed.no_slots": "No missed or late visits in this period.",
    "missed.you": "{name} (you)",
    "missed.alerts": "Alerts",
    "missed.open_only": "Open only",
    "missed.alerts_note": "{n} alerts, {open} open.",
    "missed.alerts_more": "Only the newest {n} are shown.",
    "missed.col.raised": "Raised",
    "missed.col.kind": "Kind",
    "missed.col.subject": "About",
    "missed.col.target": "For",
    "missed.col.state": "State",
    "missed.col.action": "Action",
    "missed.kind.missed_visit": "Missed visit",
    "missed.kind.hazard_escalation": "Hazard deadline",
    "missed.target.assignee": "Assignee",
    "missed.target.supervisor": "Supervisor",
    "missed.target.manager": "Estate manager",
    "missed.alert_slot": "{checkpoint}, {start}–{end}",
    "missed.alert_hazard": "{code} {title}",
    "missed.alert_due": "due {due}, {p}% of the time used",
    "missed.alert_overdue": "due {due}: due date reached",
    "missed.open": "Open",
    "missed.closed": "Closed",
    "missed.closed_by": "closed by {by} at {at}: {comment}",
    "missed.close": "Close",
    "missed.close_comment": "Comment",
    "missed.close_placeholder": "what was done about it",
    "missed.close_submit": "Close alert",
    "missed.no_alerts": "No alerts.",
    "missed.required": "Required.",
    "missed.saving": "Saving…",
    "missed.error": "Could not load: {detail}",
    "missed.err_fmt": "{msg} ({detail})",
    "missed.err.excuse.403": "You may not excuse slots",
    "missed.err.excuse.404": "No such slot",
    "missed.err.excuse.409": "This slot is already excused",
    "missed.err.excuse.422": "The reason was not accepted",
    "missed.err.close.403": "You may not close this alert",
    "missed.err.close.404": "No such alert",
    "missed.err.close.409": "This alert is already closed",
    "missed.err.close.422": "The comment was not accepted",
  },
});

const PAGE_CSS = `
.s-early { background: #7fb3d5; color: #000; }
.badge, #missed-slots button, #alerts button { white-space: nowrap; }
form.inline { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin: 0; }
form.inline input[type=text] { min-width: 16em; padding: 3px 6px; font: inherit; }
.form-error { color: #9b1c1c; flex-basis: 100%; }
.form-error:empty { display: none; }
.missed-note { margin: 4px 0 8px; }
tr.just-changed td { background: #eef6ee; }
#missed-slots td, #alerts td { white-space: normal; }
.nowrap { white-space: nowrap; }
#slots-holder .table-wrap { max-height: 65vh; overflow: auto; }
#slots-holder thead th { position: sticky; top: 0; z-index: 1; }
`;

function label(prefix, v) {
  const k = prefix + v;
  const s = t(k);
  return s === k ? String(v) : s;
}

function badge(status) {
  return h("span", { class: `badge s-${status}`, "data-status": status }, `${GLYPH[status] || ""} ${label("missed.status.", status)}`.trim());
}

/** A form's error: a line in the user's language for the statuses the call documents,
 * then the server's own detail. */
function formError(e, action) {
  const k = e instanceof ApiError ? `missed.err.${action}.${e.status}` : null;
  const s = k ? t(k) : k;
  if (!s || s === k) return errorText(e);
  const detail = errorText(e);
  return detail.toLowerCase() === s.toLowerCase() ? s : t("missed.err_fmt", { msg: s, detail });
}

/** The local date and hour of an instant in `tz`: ["2026-12-06", 3]. */
function localDateHour(v, tz) {
  const s = fmtTime(v, tz); // "2026-12-06 03:40"
  return [s.slice(0, 10), parseInt(s.slice(11, 13), 10)];
}

/** The `<tr>` core's `table()` would make for `row`. */
function rowElement(columns, row, rowClass) {
  return h("tr", { class: rowClass ? rowClass(row) : null },
    columns.map((c) => h("td", {}, c.render ? c.render(row) : c.value(row))));
}

/**
 * An inline form with one text input (`inputClass`), a submit and a cancel button, and a
 * place for the API's error. `submit(text)` does the call; on error the message shows next
 * to the form and the text stays.
 */
function inlineForm({ formClass, inputClass, labelText, placeholder, submitText, submitClass, submit, cancel, action }) {
  const input = h("input", { type: "text", class: inputClass, "aria-label": labelText, placeholder, maxlength: "2000", required: true });
  const err = h("span", { class: "form-error", role: "alert" });
  const ok = h("button", { type: "submit", class: submitClass }, submitText);
  const no = h("button", { type: "button", class: "cancel", onclick: cancel }, t("missed.cancel"));
  const form = h("form", { class: `inline ${formClass}`, novalidate: true }, input, ok, no, err);
  input.addEventListener("input", () => { if (err.textContent === t("missed.required")) err.textContent = ""; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) {
      err.textContent = t("missed.required");
      input.focus();
      return;
    }
    err.textContent = "";
    ok.disabled = no.disabled = input.disabled = true;
    ok.textContent = t("missed.saving");
    try {
      await submit(text);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      err.textContent = formError(e, action);
      ok.disabled = no.disabled = input.disabled = false;
      ok.textContent = submitText;
      input.focus();
    }
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

runPage(async (estate, main) => {
  addPageStyle("missed-css", PAGE_CSS);
  const tz = estate.timezone;
  const eid = encodeURIComponent(estate.id);
  const q = new URLSearchParams(location.search);
  const today = localDate(tz, 0);
  const [myself, names] = await Promise.all([me(), memberNames(eid)]);
  const canExcuse = hasRole(estate, "supervisor", "manager", "admin");
  const who = (id) => (!id ? "" : id === myself.user.id ? t("missed.you", { name: myself.user.name }) : names.get(id) || shortId(id));

  // ---------------------------------------------------------------- slots
  const defFrom = addDays(today, -6);
  let from = isDate(q.get("from")) ? q.get("from") : defFrom;
  let to = isDate(q.get("to")) ? q.get("to") : today;
  const wanted = new Set((q.get("status") || "missed,late").split(",").filter((s) => ["missed", "late", "excused"].includes(s)));
  if (wanted.size === 0) wanted.add("missed").add("late");

  const fromInput = h("input", { type: "date", id: "slots-from", value: from, max: today });
  const toInput = h("input", { type: "date", id: "slots-to", value: to, max: today });
  const boxes = ["missed", "late", "excused"].map((s) =>
    h("label", {}, h("input", { type: "checkbox", class: "status-filter", value: s, checked: wanted.has(s) }), label("missed.status.", s)));
  const filterErr = h("span", { class: "form-error", role: "alert", id: "slots-filter-error" });
  const slotsNote = h("p", { class: "muted missed-note", id: "slots-note" });
  const slotsHolder = h("div", { id: "slots-holder" });

  const cellHref = (s) => {
    const [date, hour] = localDateHour(s.start, tz);
    return pageHref("/console/coverage", estate, { date, checkpoint: s.checkpoint_id, hour });
  };

  let slotColumns;
  let shownSlots = [];
  let shownPeriod = { from, to };
  function slotsSummary() {
    const count = (st) => shownSlots.filter((s) => s.status === st).length;
    return t("missed.period_note", {
      ...shownPeriod, tz, n: shownSlots.length, missed: count("missed"), late: count("late"), excused: count("excused"),
    });
  }
  const slotRowClass = (s) => `slot-row status-${s.status}`;

  function refreshSlotRow(tr, s) {
    const fresh = rowElement(slotColumns, s, slotRowClass);
    decorateSlotRow(fresh, s);
    fresh.classList.add("just-changed");
    tr.replaceWith(fresh);
    return fresh;
  }

  function decorateSlotRow(tr, s) {
    tr.dataset.checkpoint = s.checkpoint_id;
    tr.dataset.rule = s.rule_id;
    tr.dataset.start = s.start;
    tr.dataset.status = s.status;
  }

  async function excuse(tr, s, reason) {
    const ex = await api(`/v1/estates/${eid}/slots/excuse`, {
      method: "POST",
      body: { rule_id: s.rule_id, checkpoint_id: s.checkpoint_id, slot_start: s.start, reason },
    });
    // Read the slot back as the API now reports it; if that fails, show what the excuse said.
    let fresh = { ...s, status: "excused", excuse: ex };
    try {
      const back = await api(`/v1/estates/${eid}/slots`, {
        query: { from: s.start, to: new Date(Date.parse(s.start) + 1).toISOString(), status: "all" },
      });
      const same = back.slots.find((x) => x.rule_id === s.rule_id && x.checkpoint_id === s.checkpoint_id && x.start === s.start);
      if (same) fresh = same;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
    }
    Object.assign(s, fresh);
    refreshSlotRow(tr, s);
    slotsNote.textContent = slotsSummary();
  }

  function excuseCell(s) {
    if (s.excuse) {
      return h("span", { class: "excuse-reason" }, s.excuse.reason, " ",
        h("span", { class: "muted" }, `(${t("missed.excused_by", { by: who(s.excuse.by), at: fmtTime(s.excuse.at, tz) })})`));
    }
    if (!canExcuse || s.status === "excused") return "";
    const btn = h("button", { type: "button", class: "excuse" }, t("missed.excuse"));
    btn.addEventListener("click", () => {
      const td = btn.closest("td");
      const tr = btn.closest("tr");
      const form = inlineForm({
        action: "excuse", formClass: "excuse-form", inputClass: "reason", labelText: t("missed.excuse_reason"),
        placeholder: t("missed.excuse_placeholder"), submitText: t("missed.excuse_submit"), submitClass: "excuse-submit",
        submit: (reason) => excuse(tr, s, reason),
        cancel: () => td.replaceChildren(btn),
      });
      td.replaceChildren(form);
    });
    return btn;
  }

  slotColumns = [
    { label: t("missed.col.window"), value: (s) => t("missed.window_fmt", { start: fmtTime(s.start, tz), end: fmtTime(s.end, tz).slice(11) }),
      render: (s) => h("span", { class: "nowrap" }, t("missed.window_fmt", { start: fmtTime(s.start, tz), end: fmtTime(s.end, tz).slice(11) })) },
    { label: t("missed.col.checkpoint"), value: (s) => `${s.checkpoint_code} ${s.checkpoint_name}`,
      render: (s) => h("a", { class: "slot-link", href: cellHref(s) }, `${s.checkpoint_code} ${s.checkpoint_name}`) },
    { label: t("missed.col.rule"), value: (s) => s.rule_name },
    { label: t("missed.col.status"), value: (s) => label("missed.status.", s.status), render: (s) => badge(s.status) },
    { label: t("missed.col.scan"), value: (s) => (s.scan ? fmtTime(s.scan.trusted_at, tz) : ""),
      render: (s) => (s.scan ? h("span", { class: "nowrap" }, fmtTime(s.scan.trusted_at, tz)) : "") },
    { label: t("missed.col.guard"), value: (s) => (s.scan ? who(s.scan.user_id) : ""),
      render: (s) => (s.scan ? h("span", { title: s.scan.user_id }, who(s.scan.user_id)) : "") },
    { label: t("missed.col.excuse"), value: (s) => (s.excuse ? s.excuse.reason : ""), render: excuseCell },
  ];

  async function loadSlots() {
    filterErr.textContent = "";
    if (from > to) {
      filterErr.textContent = t("missed.bad_period");
      return;
    }
    if (wanted.size === 0) {
      filterErr.textContent = t("missed.need_status");
      return;
    }
    const status = ["missed", "late", "excused"].filter((s) => wanted.has(s)).join(",");
    setParams({ from: from === defFrom ? null : from, to: to === today ? null : to, status: status === "missed,late" ? null : status });
    const query = { from, to: addDays(to, 1), status, limit: SLOT_LIMIT };
    shownPeriod = { from, to };
    try {
      const list = await api(`/v1/estates/${eid}/slots`, { query });
      shownSlots = list.slots;
      slotsNote.textContent = slotsSummary();
      const wrap = table({
        id: "missed-slots",
        columns: slotColumns,
        rows: list.slots,
        rowClass: slotRowClass,
        empty: t("missed.no_slots"),
        csvHref: `/v1/estates/${eid}/slots.csv?` + new URLSearchParams({ ...query, bom: 1 }),
      });
      const trs = wrap.querySelectorAll("tbody tr");
      list.slots.forEach((s, i) => trs[i] && decorateSlotRow(trs[i], s));
      // The list scrolls inside its box; its CSV link stays above it.
      const tools = wrap.querySelector(".table-tools");
      slotsHolder.replaceChildren(
        list.truncated ? h("p", { class: "error", id: "slots-truncated" }, t("missed.truncated", { n: list.slots.length })) : "",
        tools || "", wrap);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      slotsNote.textContent = "";
      slotsHolder.replaceChildren(h("div", { class: "error", role: "alert" }, t("missed.error", { detail: errorText(e) })));
    }
  }

  const slotsForm = h("form", { class: "toolbar", id: "slots-form" },
    h("label", {}, t("missed.from"), fromInput),
    h("label", {}, t("missed.to"), toInput),
    h("span", {}, t("missed.show")), boxes,
    h("button", { type: "submit", id: "slots-apply" }, t("missed.apply")),
    filterErr);
  slotsForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (isDate(fromInput.value)) from = fromInput.value;
    if (isDate(toInput.value)) to = toInput.value;
    wanted.clear();
    for (const b of slotsForm.querySelectorAll("input.status-filter")) if (b.checked) wanted.add(b.value);
    loadSlots();
  });

  // ---------------------------------------------------------------- alerts
  let openOnly = q.get("alerts") !== "all";
  const openBox = h("input", { type: "checkbox", id: "alerts-open-only", checked: openOnly });
  const alertsNote = h("p", { class: "muted missed-note", id: "alerts-note" });
  const alertsHolder = h("div", { id: "alerts-holder" });
  let alertRows = [];

  const alertCellHref = (a) => {
    const d = a.data || {};
    if (!d.slot_start || !d.checkpoint_id) return null;
    const [date, hour] = localDateHour(d.slot_start, tz);
    return pageHref("/console/coverage", estate, { date, checkpoint: d.checkpoint_id, hour });
  };

  function subjectText(a) {
    const d = a.data || {};
    if (a.kind === "missed_visit") {
      return t("missed.alert_slot", {
        checkpoint: `${d.checkpoint_code || ""} ${d.checkpoint_name || ""}`.trim() || a.subject_id,
        start: d.slot_start ? fmtTime(d.slot_start, tz) : "",
        end: d.slot_end ? fmtTime(d.slot_end, tz).slice(11) : "",
      });
    }
    if (a.kind === "hazard_escalation") {
      return t("missed.alert_hazard", { code: d.code || "", title: d.title || "" }).trim() || a.subject_id;
    }
    return a.subject_id;
  }

  function subjectDetail(a) {
    const d = a.data || {};
    if (a.kind !== "hazard_escalation" || !d.due_at) return "";
    return d.at_percent >= 100
      ? t("missed.alert_overdue", { due: fmtTime(d.due_at, tz) })
      : t("missed.alert_due", { due: fmtTime(d.due_at, tz), p: d.at_percent });
  }

  function subjectCell(a) {
    const text = subjectText(a);
    let link;
    if (a.kind === "missed_visit" && alertCellHref(a)) {
      link = h("a", { class: "alert-slot-link", href: alertCellHref(a) }, text);
    } else if (a.kind === "hazard_escalation") {
      link = h("a", { class: "alert-hazard-link", href: pageHref(`/console/hazards/${encodeURIComponent(a.subject_id)}`, estate) }, text);
    } else {
      link = text;
    }
    const more = subjectDetail(a);
    return more ? [link, h("div", { class: "muted" }, more)] : link;
  }

  function stateText(a) {
    return a.closed_at
      ? `${t("missed.closed")}: ${t("missed.closed_by", { by: who(a.closed_by), at: fmtTime(a.closed_at, tz), comment: a.close_comment || "" })}`
      : t("missed.open");
  }

  let alertColumns;
  const alertRowClass = (a) => `alert-row ${a.closed_at ? "closed" : "open"}`;

  function decorateAlertRow(tr, a) {
    tr.dataset.alert = a.id;
    tr.dataset.kind = a.kind;
    tr.dataset.state = a.closed_at ? "closed" : "open";
  }

  function actionCell(a) {
    if (a.closed_at) return "";
    const btn = h("button", { type: "button", class: "close-alert" }, t("missed.close"));
    btn.addEventListener("click", () => {
      const td = btn.closest("td");
      const tr = btn.closest("tr");
      td.replaceChildren(inlineForm({
        action: "close", formClass: "close-form", inputClass: "comment", labelText: t("missed.close_comment"),
        placeholder: t("missed.close_placeholder"), submitText: t("missed.close_submit"), submitClass: "close-submit",
        submit: async (comment) => {
          const closed = await api(`/v1/alerts/${encodeURIComponent(a.id)}/close`, { method: "POST", body: { comment } });
          Object.assign(a, closed);
          const fresh = rowElement(alertColumns, a, alertRowClass);
          decorateAlertRow(fresh, a);
          fresh.classList.add("just-changed");
          tr.replaceWith(fresh);
          alertsNote.textContent = alertsSummary();
        },
        cancel: () => td.replaceChildren(btn),
      }));
    });
    return btn;
  }

  alertColumns = [
    { label: t("missed.col.raised"), value: (a) => fmtTime(a.raised_at, tz), render: (a) => h("span", { class: "nowrap" }, fmtTime(a.raised_at, tz)) },
    { label: t("missed.col.kind"), value: (a) => label("missed.kind.", a.kind) },
    { label: t("missed.col.subject"), value: (a) => [subjectText(a), subjectDetail(a)].filter(Boolean).join(" · "), render: subjectCell },
    { label: t("missed.col.target"), value: (a) => label("missed.target.", a.target) + (a.recipient_id ? ` (${who(a.recipient_id)})` : "") },
    { label: t("missed.col.state"), value: stateText,
      render: (a) => (a.closed_at
        ? h("span", { class: "alert-closed" }, h("span", { class: "badge" }, t("missed.closed")), " ",
          t("missed.closed_by", { by: who(a.closed_by), at: fmtTime(a.closed_at, tz), comment: a.close_comment || "" }))
        : h("span", { class: "badge s-late alert-open" }, t("missed.open"))) },
    { label: t("missed.col.action"), value: () => "", render: actionCell },
  ];

  function alertsSummary() {
    return t("missed.alerts_note", { n: alertRows.length, open: alertRows.filter((a) => !a.closed_at).length })
      + (alertRows.length >= ALERT_LIMIT ? " " + t("missed.alerts_more", { n: ALERT_LIMIT }) : "");
  }

  async function loadAlerts() {
    setParams({ alerts: openOnly ? null : "all" });
    try {
      const list = await api(`/v1/estates/${eid}/alerts`, { query: { open: openOnly ? "true" : null, limit: ALERT_LIMIT } });
      alertRows = list.alerts;
      alertsNote.textContent = alertsSummary();
      const wrap = table({
        id: "alerts",
        columns: alertColumns,
        rows: alertRows,
        rowClass: alertRowClass,
        empty: t("missed.no_alerts"),
        csvName: "alerts.csv",
      });
      const trs = wrap.querySelectorAll("tbody tr");
      alertRows.forEach((a, i) => trs[i] && decorateAlertRow(trs[i], a));
      alertsHolder.replaceChildren(wrap);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      alertsNote.textContent = "";
      alertsHolder.replaceChildren(h("div", { class: "error", role: "alert" }, t("missed.error", { detail: errorText(e) })));
    }
  }
  openBox.addEventListener("change", () => {
    openOnly = openBox.checked;
    loadAlerts();
  });

  main.replaceChildren(
    h("h1", {}, t("missed.title")),
    section(t("missed.slots"), slotsForm, slotsNote, slotsHolder),
    section(t("missed.alerts"),
      h("div", { class: "toolbar" }, h("label", {}, openBox, t("missed.open_only"))),
      alertsNote, alertsHolder),
  );
  await Promise.all([loadSlots(), loadAlerts()]);
});

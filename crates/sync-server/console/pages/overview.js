// Estate overview: today's and the last 7 days' patrol coverage, open and overdue hazards
// by grade, devices that have not synced for a while, open alerts. Every number comes from
// the /v1 API: coverage, hazard-stats, hazards (overdue), devices, alerts.

import {
  runPage, api, t, h, table, section, registerMessages, fmtTime, localDate, pct, pageHref, ApiError,
  addPageStyle, addDays, shortId,
} from "../core.js";

/** A device that has not synced for this long is listed as behind. */
const STALE_HOURS = 2;

registerMessages({
  zh: {
    "overview.title": "小区概览",
    "overview.as_of": "{estate} · 数据截至 {time}（{tz}）",
    "overview.coverage": "巡更覆盖",
    "overview.today": "今天（{date}，截至现在）",
    "overview.week": "过去 7 天（{from} 至 {to}）",
    "overview.rate.coverage": "覆盖率",
    "overview.rate.coverage_hint": "准时 + 迟到 / 应巡（不含豁免）",
    "overview.rate.strict": "准时率",
    "overview.rate.strict_hint": "仅准时 / 应巡（不含豁免）",
    "overview.rate.verified": "可信覆盖率",
    "overview.rate.verified_hint": "时钟已核验且无异常的扫描 / 应巡",
    "overview.counts": "应巡 {expected} · 准时 {on_time} · 迟到 {late} · 漏巡 {missed} · 豁免 {excused} · 待定 {pending}",
    "overview.by_day": "过去 7 天逐日",
    "overview.col.date": "日期",
    "overview.col.expected": "应巡",
    "overview.col.on_time": "准时",
    "overview.col.late": "迟到",
    "overview.col.early": "早到",
    "overview.col.missed": "漏巡",
    "overview.col.excused": "豁免",
    "overview.col.coverage": "覆盖率",
    "overview.col.strict": "准时率",
    "overview.col.verified": "可信覆盖率",
    "overview.to_coverage": "查看巡更热力图 →",
    "overview.to_missed": "查看漏巡与告警 →",
    "overview.hazards": "安全隐患",
    "overview.open_general": "未销号一般隐患",
    "overview.open_major": "未销号重大隐患",
    "overview.overdue": "逾期未整改",
    "overview.rectification_rate": "整改率 {rate}",
    "overview.by_grade": "按等级",
    "overview.col.grade": "等级",
    "overview.col.open": "未销号",
    "overview.col.overdue": "逾期",
    "overview.grade.general": "一般隐患",
    "overview.grade.major": "重大隐患",
    "overview.grade.total": "合计",
    "overview.overdue_list": "逾期隐患",
    "overview.overdue_more": "只列出前 {n} 条。",
    "overview.col.code": "编号",
    "overview.col.title": "隐患",
    "overview.col.category": "类别",
    "overview.col.state": "状态",
    "overview.col.due": "整改期限",
    "overview.to_hazards": "查看隐患看板 →",
    "overview.state.reported": "已上报",
    "overview.state.assigned": "已派单",
    "overview.state.in_rectification": "整改中",
    "overview.state.extension_requested": "申请延期",
    "overview.state.pending_verification": "待验收",
    "overview.state.closed": "已销号",
    "overview.state.cancelled": "已撤销",
    "overview.devices": "设备同步",
    "overview.stale": "超过 {hours} 小时未同步的巡更设备",
    "overview.stale_of": "共 {total} 台在用巡更设备（不含网页控制台）",
    "overview.col.device": "设备",
    "overview.col.platform": "平台",
    "overview.col.app_version": "应用版本",
    "overview.col.last_user": "最后使用人",
    "overview.col.last_seen": "最后同步",
    "overview.col.since": "未同步时长",
    "overview.col.missing": "缺失记录",
    "overview.hours_ago": "{h} 小时",
    "overview.days_ago": "{d} 天 {h} 小时",
    "overview.no_stale": "所有设备都在 {hours} 小时内同步过。",
    "overview.to_devices": "查看设备 →",
    "overview.alerts": "告警",
    "overview.open_alerts": "未关闭告警",
    "overview.alerts_more": "至少 {n} 条",
    "overview.col.kind": "类型",
    "overview.col.count": "未关闭",
    "overview.kind.missed_visit": "漏巡",
    "overview.kind.hazard_escalation": "隐患逾期提醒",
    "overview.unnamed": "（未命名）",
    "overview.category.fire": "消防",
    "overview.category.electrical": "电气",
    "overview.category.equipment": "设备",
    "overview.category.access": "出入口",
    "overview.category.security": "治安",
    "overview.category.structural": "建筑",
    "overview.category.structure": "建筑",
    "overview.category.ebike": "电动车",
    "overview.section_error": "这一部分没有加载出来：{detail}",
  },
  en: {
    "overview.title": "Estate overview",
    "overview.as_of": "{estate} · as of {time} ({tz})",
    "overview.coverage": "Patrol coverage",
    "overview.today": "Today ({date}, so far)",
    "overview.week": "Last 7 days ({from} to {to})",
    "overview.rate.coverage": "Coverage",
    "overview.rate.coverage_hint": "on time + late / expected (excused left out)",
    "overview.rate.strict": "Strict (on time)",
    "overview.rate.strict_hint": "on time only / expected (excused left out)",
    "overview.rate.verified": "Verified",
    "overview.rate.verified_hint": "scans with a verified clock and no anomaly / expected",
    "overview.counts": "expected {expected} · on time {on_time} · late {late} · missed {missed} · excused {excused} · pending {pending}",
    "overview.by_day": "Last 7 days by day",
    "overview.col.date": "Date",
    "overview.col.expected": "Expected",
    "overview.col.on_time": "On time",
    "overview.col.late": "Late",
    "overview.col.early": "Early",
    "overview.col.missed": "Missed",
    "overview.col.excused": "Excused",
    "overview.col.coverage": "Coverage",
    "overview.col.strict": "Strict",
    "overview.col.verified": "Verified",
    "overview.to_coverage": "Open the coverage heat map →",
    "overview.to_missed": "Open missed visits & alerts →",
    "overview.hazards": "Hazards",
    "overview.open_general": "Open general hazards",
    "overview.open_major": "Open major hazards",
    "overview.overdue": "Overdue",
    "overview.rectification_rate": "rectification rate {rate}",
    "overview.by_grade": "By grade",
    "overview.col.grade": "Grade",
    "overview.col.open": "Open",
    "overview.col.overdue": "Overdue",
    "overview.grade.general": "General",
    "overview.grade.major": "Major",
    "overview.grade.total": "Total",
    "overview.overdue_list": "Overdue hazards",
    "overview.overdue_more": "Only the first {n} are listed.",
    "overview.col.code": "Code",
    "overview.col.title": "Hazard",
    "overview.col.category": "Category",
    "overview.col.state": "State",
    "overview.col.due": "Due",
    "overview.to_hazards": "Open the hazard board →",
    "overview.state.reported": "Reported",
    "overview.state.assigned": "Assigned",
    "overview.state.in_rectification": "In rectification",
    "overview.state.extension_requested": "Extension requested",
    "overview.state.pending_verification": "Pending verification",
    "overview.state.closed": "Closed",
    "overview.state.cancelled": "Cancelled",
    "overview.devices": "Device sync",
    "overview.stale": "Handsets not synced for over {hours} hours",
    "overview.stale_of": "of {total} handsets in use (console browsers left out)",
    "overview.col.device": "Device",
    "overview.col.platform": "Platform",
    "overview.col.app_version": "App version",
    "overview.col.last_user": "Last used by",
    "overview.col.last_seen": "Last sync",
    "overview.col.since": "Not synced for",
    "overview.col.missing": "Missing records",
    "overview.hours_ago": "{h} h",
    "overview.days_ago": "{d} d {h} h",
    "overview.no_stale": "Every device has synced in the last {hours} hours.",
    "overview.to_devices": "Open devices →",
    "overview.alerts": "Alerts",
    "overview.open_alerts": "Open alerts",
    "overview.alerts_more": "at least {n}",
    "overview.col.kind": "Kind",
    "overview.col.count": "Open",
    "overview.kind.missed_visit": "Missed visit",
    "overview.kind.hazard_escalation": "Hazard due / overdue",
    "overview.unnamed": "(unnamed)",
    "overview.category.fire": "Fire",
    "overview.category.electrical": "Electrical",
    "overview.category.equipment": "Equipment",
    "overview.category.access": "Access",
    "overview.category.security": "Security",
    "overview.category.structural": "Structure",
    "overview.category.structure": "Structure",
    "overview.category.ebike": "E-bikes",
    "overview.section_error": "This part did not load: {detail}",
  },
});

const PAGE_CSS = `
.ov-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 10px; margin-bottom: 12px; }
.ov-pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 0 16px; }
.ov-card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fbfcfd; }
.ov-card .stat { font-size: 26px; }
.ov-card .stat.bad { color: var(--missed); } .ov-card .stat.warn { color: #a86b00; }
.ov-period { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
.ov-period h3 { font-size: 14px; margin: 0 0 6px; }
.ov-links { margin: 8px 0 0; }
.ov-links a { margin-right: 16px; }
.ov-sub { margin: 12px 0 4px; font-size: 14px; }
td.num, th.num { text-align: right; }
`;

function category(c) {
  const k = "overview.category." + c;
  const s = t(k);
  return s === k ? c : s;
}

function rateClass(x) {
  if (x === null || x === undefined) return "";
  return x < 0.8 ? "bad" : x < 0.95 ? "warn" : "";
}

function card(id, label, value, hint, cls) {
  return h("div", { class: "ov-card", id, title: hint || null },
    h("div", { class: "stat " + (cls || "") }, value, h("small", {}, label)),
    hint ? h("div", { class: "muted" }, hint) : null);
}

function sectionError(e) {
  return h("div", { class: "error", role: "alert" }, t("overview.section_error", { detail: e.message || String(e) }));
}

function coverageBlock(id, title, c) {
  return h("div", { id },
    h("h3", {}, title),
    h("div", { class: "ov-cards" },
      card(id + "-coverage", t("overview.rate.coverage"), pct(c.coverage), t("overview.rate.coverage_hint"), rateClass(c.coverage)),
      card(id + "-strict", t("overview.rate.strict"), pct(c.strict_coverage), t("overview.rate.strict_hint"), rateClass(c.strict_coverage)),
      card(id + "-verified", t("overview.rate.verified"), pct(c.verified_coverage), t("overview.rate.verified_hint"), rateClass(c.verified_coverage))),
    h("p", { class: "muted counts" }, t("overview.counts", c)));
}

function coverageSection(estate, today, week, weekFrom, todayDate) {
  const parts = [];
  if (today.status === "rejected" || week.status === "rejected") {
    parts.push(sectionError(today.reason || week.reason));
  } else {
    const w = week.value;
    parts.push(h("div", { class: "ov-period" },
      coverageBlock("cov-today", t("overview.today", { date: todayDate }), today.value.totals),
      coverageBlock("cov-week", t("overview.week", { from: weekFrom, to: addDays(todayDate, -1) }), w.totals)));
    const n = (k) => ({ label: t("overview.col." + k), value: (r) => r[k] });
    parts.push(h("h3", { class: "ov-sub" }, t("overview.by_day")));
    parts.push(table({
      id: "overview-days",
      columns: [
        { label: t("overview.col.date"), value: (r) => r.label,
          render: (r) => h("a", { href: pageHref("/console/coverage", estate, { date: r.key || r.label }) }, r.label) },
        n("expected"), n("on_time"), n("late"), n("missed"), n("excused"),
        { label: t("overview.col.coverage"), value: (r) => pct(r.coverage) },
        { label: t("overview.col.strict"), value: (r) => pct(r.strict_coverage) },
        { label: t("overview.col.verified"), value: (r) => pct(r.verified_coverage) },
      ],
      rows: w.groups,
      csvHref: `/v1/estates/${estate.id}/coverage.csv?` + new URLSearchParams({ from: weekFrom, to: todayDate, group_by: "day", bom: 1 }),
    }));
  }
  parts.push(h("p", { class: "ov-links" },
    h("a", { href: pageHref("/console/coverage", estate), id: "link-coverage" }, t("overview.to_coverage")),
    h("a", { href: pageHref("/console/missed", estate), id: "link-missed" }, t("overview.to_missed"))));
  return section(t("overview.coverage"), ...parts);
}

function hazardSection(estate, stats, overdue) {
  const parts = [];
  if (stats.status === "rejected") {
    parts.push(sectionError(stats.reason));
  } else {
    const s = stats.value;
    parts.push(h("div", { class: "ov-cards" },
      card("hz-open-general", t("overview.open_general"), s.open_general),
      card("hz-open-major", t("overview.open_major"), s.open_major, null, s.open_major > 0 ? "warn" : ""),
      card("hz-overdue", t("overview.overdue"), s.overdue,
        t("overview.rectification_rate", { rate: pct(s.rectification_rate) }), s.overdue > 0 ? "bad" : "")));
    if (overdue.status === "fulfilled") {
      const list = overdue.value.hazards;
      const byGrade = (g) => list.filter((x) => x.grade === g).length;
      const complete = !overdue.value.next_before;
      const rows = [
        { grade: "general", open: s.open_general, overdue: complete ? byGrade("general") : "—" },
        { grade: "major", open: s.open_major, overdue: complete ? byGrade("major") : "—" },
        { grade: "total", open: s.open, overdue: s.overdue },
      ];
      parts.push(h("h3", { class: "ov-sub" }, t("overview.by_grade")));
      parts.push(table({
        id: "overview-hazards-by-grade",
        columns: [
          { label: t("overview.col.grade"), value: (r) => t("overview.grade." + r.grade) },
          { label: t("overview.col.open"), value: (r) => r.open },
          { label: t("overview.col.overdue"), value: (r) => r.overdue },
        ],
        rows,
        csvName: "hazards-by-grade.csv",
      }));
      parts.push(h("h3", { class: "ov-sub" }, t("overview.overdue_list")));
      parts.push(table({
        id: "overview-overdue",
        columns: [
          { label: t("overview.col.code"), value: (r) => r.code,
            render: (r) => h("a", { href: pageHref(`/console/hazards/${encodeURIComponent(r.id)}`, estate) }, r.code) },
          { label: t("overview.col.title"), value: (r) => r.title },
          { label: t("overview.col.grade"), value: (r) => t("overview.grade." + r.grade) },
          { label: t("overview.col.category"), value: (r) => category(r.category) },
          { label: t("overview.col.state"), value: (r) => t("overview.state." + r.state) },
          { label: t("overview.col.due"), value: (r) => fmtTime(r.due_at, estate.timezone) },
        ],
        rows: list,
        rowClass: () => "overdue",
        csvHref: `/v1/hazards.csv?` + new URLSearchParams({ estate_id: estate.id, overdue: "true", bom: 1 }),
      }));
      if (!complete) parts.push(h("p", { class: "muted" }, t("overview.overdue_more", { n: list.length })));
    } else {
      parts.push(sectionError(overdue.reason));
    }
  }
  parts.push(h("p", { class: "ov-links" },
    h("a", { href: pageHref("/console/hazards", estate), id: "link-hazards" }, t("overview.to_hazards"))));
  return section(t("overview.hazards"), ...parts);
}

function since(ms) {
  const hours = Math.floor(ms / 3600000);
  return hours >= 24
    ? t("overview.days_ago", { d: Math.floor(hours / 24), h: hours % 24 })
    : t("overview.hours_ago", { h: hours });
}

function deviceSection(estate, devices, now, names) {
  const parts = [];
  if (devices.status === "rejected") {
    parts.push(sectionError(devices.reason));
  } else {
    // Handsets only: browsers signed into the console are devices too (platform "web").
    const live = devices.value.devices.filter((d) => !d.revoked && d.platform !== "web");
    const stale = live
      .filter((d) => now - Date.parse(d.last_seen_at) > STALE_HOURS * 3600000)
      .sort((a, b) => Date.parse(a.last_seen_at) - Date.parse(b.last_seen_at));
    parts.push(h("div", { class: "ov-cards" },
      card("dev-stale", t("overview.stale", { hours: STALE_HOURS }), stale.length,
        t("overview.stale_of", { total: live.length }), stale.length > 0 ? "warn" : "")));
    parts.push(table({
      id: "stale-devices",
      columns: [
        { label: t("overview.col.device"), value: (d) => d.name || t("overview.unnamed"),
          render: (d) => h("span", { title: d.id }, d.name || t("overview.unnamed")) },
        { label: t("overview.col.platform"), value: (d) => d.platform || "" },
        { label: t("overview.col.app_version"), value: (d) => d.app_version || "" },
        { label: t("overview.col.last_user"), value: (d) => names.get(d.last_user_id) || shortId(d.last_user_id),
          render: (d) => h("span", { title: d.last_user_id || "" }, names.get(d.last_user_id) || shortId(d.last_user_id)) },
        { label: t("overview.col.last_seen"), value: (d) => fmtTime(d.last_seen_at, estate.timezone) },
        { label: t("overview.col.since"), value: (d) => since(now - Date.parse(d.last_seen_at)) },
        { label: t("overview.col.missing"), value: (d) => d.missing_seqs },
      ],
      rows: stale,
      empty: t("overview.no_stale", { hours: STALE_HOURS }),
      csvName: "stale-devices.csv",
    }));
  }
  parts.push(h("p", { class: "ov-links" },
    h("a", { href: pageHref("/console/devices", estate), id: "link-devices" }, t("overview.to_devices"))));
  return section(t("overview.devices"), ...parts);
}

const ALERT_LIMIT = 1000;

function alertSection(estate, alerts) {
  const parts = [];
  if (alerts.status === "rejected") {
    parts.push(sectionError(alerts.reason));
  } else {
    const list = alerts.value.alerts;
    const full = list.length >= ALERT_LIMIT;
    const kinds = new Map();
    for (const a of list) kinds.set(a.kind, (kinds.get(a.kind) || 0) + 1);
    parts.push(h("div", { class: "ov-cards" },
      card("alerts-open", t("overview.open_alerts"), full ? `${ALERT_LIMIT}+` : list.length,
        full ? t("overview.alerts_more", { n: ALERT_LIMIT }) : null, list.length > 0 ? "warn" : "")));
    const kindLabel = (k) => {
      const s = t("overview.kind." + k);
      return s === "overview.kind." + k ? k : s;
    };
    parts.push(table({
      id: "overview-alerts",
      columns: [
        { label: t("overview.col.kind"), value: (r) => kindLabel(r.kind) },
        { label: t("overview.col.count"), value: (r) => r.count },
      ],
      rows: [...kinds].map(([kind, count]) => ({ kind, count })),
      csvName: "open-alerts-by-kind.csv",
    }));
  }
  parts.push(h("p", { class: "ov-links" },
    h("a", { href: pageHref("/console/missed", estate), id: "link-alerts" }, t("overview.to_missed"))));
  return section(t("overview.alerts"), ...parts);
}

runPage(async (estate, main) => {
  addPageStyle("overview-css", PAGE_CSS);
  const tz = estate.timezone;
  const id = encodeURIComponent(estate.id);
  const todayDate = localDate(tz, 0);
  const weekFrom = addDays(todayDate, -7);
  const now = Date.now();
  const [today, week, stats, overdue, devices, alerts, members] = await Promise.allSettled([
    api(`/v1/estates/${id}/coverage`, { query: { from: todayDate } }),
    api(`/v1/estates/${id}/coverage`, { query: { from: weekFrom, to: todayDate, group_by: "day" } }),
    api(`/v1/estates/${id}/hazard-stats`),
    api("/v1/hazards", { query: { estate_id: estate.id, overdue: "true", limit: 1000 } }),
    api(`/v1/estates/${id}/devices`),
    api(`/v1/estates/${id}/alerts`, { query: { open: "true", limit: ALERT_LIMIT } }),
    api(`/v1/estates/${id}/members`),
  ]);
  for (const r of [today, week, stats, overdue, devices, alerts, members]) {
    if (r.status === "rejected" && r.reason instanceof ApiError && r.reason.status === 401) throw r.reason;
  }
  main.replaceChildren(
    h("h1", {}, t("overview.title")),
    h("p", { class: "muted", id: "as-of" }, t("overview.as_of", { estate: estate.name, time: fmtTime(now, tz), tz })),
    coverageSection(estate, today, week, weekFrom, todayDate),
    hazardSection(estate, stats, overdue),
    h("div", { class: "ov-pair" },
      deviceSection(estate, devices, now,
        new Map(members.status === "fulfilled" ? members.value.members.map((m) => [m.id, m.name]) : [])),
      alertSection(estate, alerts)),
  );
});

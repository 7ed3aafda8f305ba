// Coverage: the checkpoint × hour heat map of one local day (click a cell for its slots and
// the scans that settled them), the weekly trend chart (drawn by the server), and coverage
// per guard and per route over a period. Linkable: `?date=&checkpoint=&hour=` opens a
// cell's detail, `?from=&to=` (inclusive local dates) sets the tables' period.
//
// API: GET /v1/estates/{id}/heatmap?date=, heatmap.csv; GET /v1/estates/{id}/slots?from=&to=
// &status=all&checkpoint= (the cell's hour and checkpoint; each scan with its photos); GET /v1/estates/{id}/coverage?from=&to=&group_by=guard|route, coverage.csv.

import {
  runPage, api, t, h, table, section, registerMessages, fmtTime, localDate, pct, lang, me, ApiError,
  addPageStyle, addDays, shortId, memberNames, errorText, setParams, isDate,
} from "../core.js";

const STATUSES = ["on_time", "late", "early", "missed", "excused", "pending"];
/** A sign per status, so the map reads without colour too. */
const GLYPH = { on_time: "✓", late: "!", early: "‹", missed: "✕", excused: "–", pending: "…", none: "" };

registerMessages({
  zh: {
    "coverage.title": "巡更覆盖",
    "coverage.heatmap": "巡更点 × 小时热力图",
    "coverage.date": "日期",
    "coverage.prev_day": "‹ 前一天",
    "coverage.next_day": "后一天 ›",
    "coverage.yesterday": "昨天",
    "coverage.today": "今天",
    "coverage.heatmap_csv": "导出热力图 CSV",
    "coverage.tz_note": "时间为小区当地时间（{tz}）。每格为该小时内开始的应巡时段中最差的结果；点击格子查看详情。",
    "coverage.checkpoint": "巡更点",
    "coverage.class.key": "重点",
    "coverage.class.general": "一般",
    "coverage.no_rows": "这一天没有应巡的巡更点。",
    "coverage.status.on_time": "准时",
    "coverage.status.late": "迟到",
    "coverage.status.early": "早到",
    "coverage.status.missed": "漏巡",
    "coverage.status.excused": "已豁免",
    "coverage.status.pending": "待定",
    "coverage.status.none": "无应巡",
    "coverage.cell_title": "{checkpoint} · {hour}:00 · {status} · 应巡 {slots}",
    "coverage.detail": "时段详情",
    "coverage.detail_title": "{checkpoint} · {date} {hour}:00–{hour}:59",
    "coverage.detail_close": "关闭",
    "coverage.detail_loading": "加载中…",
    "coverage.detail_none": "这一小时该巡更点没有应巡时段。",
    "coverage.window": "时段",
    "coverage.window_fmt": "{start}–{end}（宽限至 {grace}）",
    "coverage.rule": "规则",
    "coverage.status": "结果",
    "coverage.excuse": "豁免原因",
    "coverage.excuse_by": "{by} 于 {at} 豁免",
    "coverage.scan": "扫描记录",
    "coverage.no_scan": "没有扫描记录。",
    "coverage.trusted_at": "可信时间",
    "coverage.device_time": "设备时间",
    "coverage.clock_trust": "时钟可信度",
    "coverage.trust.verified": "已核验",
    "coverage.trust.estimated": "推算",
    "coverage.flags": "异常标记",
    "coverage.no_flags": "无",
    "coverage.guard": "保安",
    "coverage.device": "设备",
    "coverage.scan_id": "记录编号",
    "coverage.photos": "照片",
    "coverage.photos_unavailable": "接口暂未提供扫描的照片。",
    "coverage.no_photos": "没有照片。",
    "coverage.flag.outside_radius": "超出巡更点范围",
    "coverage.flag.mock_location": "模拟定位",
    "coverage.flag.impossible_speed": "移动速度不合理",
    "coverage.flag.clock_skew": "设备时钟偏差",
    "coverage.flag.seq_time_disorder": "记录顺序与时间不符",
    "coverage.flag.burst": "短时间连续扫描",
    "coverage.flag.unknown_tag": "未知标签",
    "coverage.trend": "近 8 周趋势",
    "coverage.trend_alt": "近 8 周巡更覆盖率、准时率和可信覆盖率的周趋势图",
    "coverage.tables": "按保安、按路线统计",
    "coverage.from": "从",
    "coverage.to": "到",
    "coverage.apply": "查询",
    "coverage.period_note": "{from} 至 {to}（含），小区当地日期。",
    "coverage.by_guard": "按保安",
    "coverage.by_route": "按路线",
    "coverage.col.guard": "保安",
    "coverage.col.route": "巡更路线",
    "coverage.col.expected": "应巡",
    "coverage.col.on_time": "准时",
    "coverage.col.late": "迟到",
    "coverage.col.early": "早到",
    "coverage.col.missed": "漏巡",
    "coverage.col.excused": "豁免",
    "coverage.col.coverage": "覆盖率",
    "coverage.col.strict": "准时率",
    "coverage.col.verified": "可信覆盖率",
    "coverage.no_guard": "（无人扫描：漏巡、豁免）",
    "coverage.you": "{name}（我）",
    "coverage.bad_period": "开始日期不能晚于结束日期。",
    "coverage.error": "加载失败：{detail}",
  },
  en: {
    "coverage.title": "Coverage",
    "coverage.heatmap": "Checkpoint × hour heat map",
    "coverage.date": "Date",
    "coverage.prev_day": "‹ Previous day",
    "coverage.next_day": "Next day ›",
    "coverage.yesterday": "Yesterday",
    "coverage.today": "Today",
    "coverage.heatmap_csv": "Heat map CSV",
    "coverage.tz_note": "Times are the estate's local time ({tz}). Each cell is the worst result of the slots starting in that hour; click a cell for its detail.",
    "coverage.checkpoint": "Checkpoint",
    "coverage.class.key": "key",
    "coverage.class.general": "general",
    "coverage.no_rows": "No checkpoint had visits due on this day.",
    "coverage.status.on_time": "On time",
    "coverage.status.late": "Late",
    "coverage.status.early": "Early",
    "coverage.status.missed": "Missed",
    "coverage.status.excused": "Excused",
    "coverage.status.pending": "Pending",
    "coverage.status.none": "Nothing due",
    "coverage.cell_title": "{checkpoint} · {hour}:00 · {status} · {slots} due",
    "coverage.detail": "Slot detail",
    "coverage.detail_title": "{checkpoint} · {date} {hour}:00–{hour}:59",
    "coverage.detail_close": "Close",
    "coverage.detail_loading": "Loading…",
    "coverage.detail_none": "No visit of this checkpoint was due in this hour.",
    "coverage.window": "Window",
    "coverage.window_fmt": "{start}–{end} (grace until {grace})",
    "coverage.rule": "Rule",
    "coverage.status": "Result",
    "coverage.excuse": "Excuse",
    "coverage.excuse_by": "excused by {by} at {at}",
    "coverage.scan": "Scan",
    "coverage.no_scan": "No scan.",
    "coverage.trusted_at": "Trusted time",
    "coverage.device_time": "Device time",
    "coverage.clock_trust": "Clock trust",
    "coverage.trust.verified": "verified",
    "coverage.trust.estimated": "estimated",
    "coverage.flags": "Anomaly flags",
    "coverage.no_flags": "none",
    "coverage.guard": "Guard",
    "coverage.device": "Device",
    "coverage.scan_id": "Record id",
    "coverage.photos": "Photos",
    "coverage.photos_unavailable": "The API does not provide a scan's photos yet.",
    "coverage.no_photos": "No photos.",
    "coverage.flag.outside_radius": "outside the checkpoint's radius",
    "coverage.flag.mock_location": "mock location",
    "coverage.flag.impossible_speed": "impossible speed",
    "coverage.flag.clock_skew": "device clock skew",
    "coverage.flag.seq_time_disorder": "sequence and time disagree",
    "coverage.flag.burst": "burst of scans",
    "coverage.flag.unknown_tag": "unknown tag",
    "coverage.trend": "Trend, last 8 weeks",
    "coverage.trend_alt": "Weekly coverage, strict and verified coverage over the last 8 weeks",
    "coverage.tables": "By guard and by route",
    "coverage.from": "From",
    "coverage.to": "to",
    "coverage.apply": "Show",
    "coverage.period_note": "{from} to {to} inclusive, estate local dates.",
    "coverage.by_guard": "By guard",
    "coverage.by_route": "By route",
    "coverage.col.guard": "Guard",
    "coverage.col.route": "Route",
    "coverage.col.expected": "Expected",
    "coverage.col.on_time": "On time",
    "coverage.col.late": "Late",
    "coverage.col.early": "Early",
    "coverage.col.missed": "Missed",
    "coverage.col.excused": "Excused",
    "coverage.col.coverage": "Coverage",
    "coverage.col.strict": "Strict",
    "coverage.col.verified": "Verified",
    "coverage.no_guard": "(no scan: missed, excused)",
    "coverage.you": "{name} (you)",
    "coverage.bad_period": "The start date must not be after the end date.",
    "coverage.error": "Could not load: {detail}",
  },
});

const PAGE_CSS = `
#heatmap { border-collapse: separate; border-spacing: 2px; font-size: 12px; }
#heatmap th { font-weight: 600; padding: 2px 4px; white-space: nowrap; background: none; }
#heatmap thead th { text-align: center; color: var(--muted); min-width: 24px; }
#heatmap thead th:first-child { text-align: left; }
#heatmap tbody th { text-align: left; font-weight: 400; }
#heatmap tbody th .code { font-weight: 600; margin-right: 4px; }
#heatmap tbody th .cls { font-size: 11px; color: var(--muted); margin-left: 4px; }
#heatmap td.cell { width: 26px; height: 22px; text-align: center; cursor: pointer; border-radius: 3px; padding: 0; }
#heatmap td.cell:hover { outline: 2px solid var(--ink); }
#heatmap td.cell.selected { outline: 3px solid var(--accent); outline-offset: 1px; }
#heatmap td.cell:focus-visible { outline: 3px solid var(--accent); }
.s-early { background: #7fb3d5; color: #000; }
.badge { white-space: nowrap; }
#slot-detail h4 { margin: 10px 0 2px; font-size: 14px; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0; font-size: 12px; }
.legend span.sw { display: inline-block; width: 18px; height: 14px; border-radius: 3px; text-align: center; line-height: 14px; margin-right: 4px; vertical-align: middle; font-size: 11px; }
#slot-detail { border: 1px solid var(--accent); border-radius: 6px; padding: 10px 14px; margin-top: 12px; background: #f8faff; }
#slot-detail[hidden] { display: none; }
#slot-detail .head { display: flex; align-items: center; gap: 8px; }
#slot-detail .head h3 { margin: 0; font-size: 15px; flex: 1; }
#slot-detail .slot { border-top: 1px solid var(--line); padding-top: 8px; margin-top: 8px; }
#slot-detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0; }
#slot-detail dt { color: var(--muted); }
#slot-detail dd { margin: 0; }
#slot-detail .flag { background: #fde8c8; color: #6b3b00; margin-right: 4px; }
#slot-detail .photos img { max-height: 120px; margin: 4px 4px 0 0; border: 1px solid var(--line); border-radius: 4px; }
#trend { max-width: 100%; height: auto; display: block; }
.cov-tables h3 { font-size: 14px; margin: 12px 0 4px; }
.inline-error { color: #9b1c1c; }
`;

/** Device id → name, from GET /v1/estates/{id}/devices (empty if it fails). */
async function deviceNames(eid) {
  try {
    const r = await api(`/v1/estates/${eid}/devices`);
    return new Map(r.devices.filter((d) => d.name).map((d) => [d.id, d.name]));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    return new Map();
  }
}

function statusLabel(s) {
  return t("coverage.status." + (s || "none"));
}

function badge(status) {
  return h("span", { class: `badge s-${status || "none"}`, "data-status": status || "none" },
    `${GLYPH[status || "none"]} ${statusLabel(status)}`.trim());
}

function flagLabel(f) {
  const k = "coverage.flag." + f;
  const s = t(k);
  return s === k ? f : s;
}

/** Only the time of day, HH:MM (or with seconds), in the estate's zone. */
function clock(v, tz, seconds = false) {
  return fmtTime(v, tz, seconds).slice(11);
}

runPage(async (estate, main) => {
  addPageStyle("coverage-css", PAGE_CSS);
  const tz = estate.timezone;
  const eid = encodeURIComponent(estate.id);
  const q = new URLSearchParams(location.search);
  const today = localDate(tz, 0);
  const [myself, names, devices] = await Promise.all([me(), memberNames(eid), deviceNames(eid)]);

  // ---------------------------------------------------------------- heat map
  let date = isDate(q.get("date")) ? q.get("date") : addDays(today, -1);
  let heat = null; // the last heat map loaded

  const dateInput = h("input", { type: "date", id: "heatmap-date", value: date, max: today });
  const csvLink = h("a", { class: "csv", id: "heatmap-csv", download: "" }, t("coverage.heatmap_csv"));
  const mapHolder = h("div", { class: "table-wrap", id: "heatmap-wrap" });
  const detail = h("div", { id: "slot-detail", hidden: true, "aria-live": "polite" });

  const go = (d) => {
    if (!isDate(d)) return;
    date = d;
    dateInput.value = d;
    closeDetail();
    loadHeatmap();
  };
  dateInput.addEventListener("change", () => go(dateInput.value));

  const toolbar = h("div", { class: "toolbar" },
    h("button", { type: "button", id: "prev-day", onclick: () => go(addDays(date, -1)) }, t("coverage.prev_day")),
    h("label", {}, t("coverage.date"), dateInput),
    h("button", { type: "button", id: "next-day", onclick: () => go(addDays(date, 1)) }, t("coverage.next_day")),
    h("button", { type: "button", id: "go-yesterday", onclick: () => go(addDays(today, -1)) }, t("coverage.yesterday")),
    h("button", { type: "button", id: "go-today", onclick: () => go(today) }, t("coverage.today")),
    h("span", { class: "spacer", style: "flex:1" }),
    csvLink);

  const legend = h("div", { class: "legend", id: "heatmap-legend" },
    [...STATUSES, "none"].map((s) => h("span", {},
      h("span", { class: `sw s-${s}` }, GLYPH[s]), statusLabel(s))));

  function renderHeatmap(hm) {
    const hours = hm.hours;
    const thead = h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, t("coverage.checkpoint")),
      hours.map((x) => h("th", { scope: "col" }, x))));
    const tbody = h("tbody", {}, hm.rows.map((r) => h("tr", { "data-checkpoint": r.checkpoint_id },
      h("th", { scope: "row", title: r.checkpoint_id },
        h("span", { class: "code" }, r.code), r.name, h("span", { class: "cls" }, t("coverage.class." + r.class))),
      r.cells.map((c, i) => {
        const status = c.status || "none";
        return h("td", {
          class: `cell s-${status}`,
          "data-status": status,
          "data-checkpoint": r.checkpoint_id,
          "data-hour": parseInt(hours[i], 10),
          "data-col": i,
          tabindex: c.slots > 0 ? "0" : null,
          title: t("coverage.cell_title", { checkpoint: `${r.code} ${r.name}`, hour: hours[i], status: statusLabel(c.status), slots: c.slots }),
        }, GLYPH[status]);
      }))));
    const tbl = h("table", { id: "heatmap", "data-date": hm.date }, thead, tbody);
    tbl.addEventListener("click", (ev) => {
      const td = ev.target.closest("td.cell");
      if (td) openDetail(td.dataset.checkpoint, Number(td.dataset.col));
    });
    tbl.addEventListener("keydown", (ev) => {
      const td = ev.target.closest("td.cell");
      if (td && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        openDetail(td.dataset.checkpoint, Number(td.dataset.col));
      }
    });
    mapHolder.replaceChildren(hm.rows.length ? tbl : h("p", { class: "muted", id: "heatmap-empty" }, t("coverage.no_rows")), detail);
  }

  async function loadHeatmap() {
    setParams({ date, checkpoint: null, hour: null });
    csvLink.href = `/v1/estates/${eid}/heatmap.csv?` + new URLSearchParams({ date, bom: 1 });
    dateInput.value = date;
    try {
      heat = await api(`/v1/estates/${eid}/heatmap`, { query: { date } });
      renderHeatmap(heat);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      heat = null;
      mapHolder.replaceChildren(h("div", { class: "error", role: "alert" }, t("coverage.error", { detail: errorText(e) })), detail);
    }
  }

  // ---------------------------------------------------------------- slot detail
  let detailSeq = 0;

  function closeDetail() {
    detail.hidden = true;
    detail.replaceChildren();
    delete detail.dataset.loaded;
    for (const el of document.querySelectorAll("#heatmap td.selected")) el.classList.remove("selected");
    setParams({ checkpoint: null, hour: null });
  }

  function guardName(userId) {
    if (!userId) return "";
    if (userId === myself.user.id) return t("coverage.you", { name: myself.user.name });
    return names.get(userId) || shortId(userId);
  }

  function scanBlock(scan) {
    if (!scan) return h("p", { class: "muted no-scan" }, t("coverage.no_scan"));
    const rows = [
      [t("coverage.trusted_at"), h("span", { class: "trusted-at" }, fmtTime(scan.trusted_at, tz, true))],
    ];
    // Not in the API's ScanView yet: shown when the server adds the handset's own time.
    if (scan.recorded_at) rows.push([t("coverage.device_time"), h("span", { class: "device-time" }, fmtTime(scan.recorded_at, tz, true))]);
    rows.push(
      [t("coverage.clock_trust"), h("span", { class: `clock-trust trust-${scan.clock_trust}` },
        t("coverage.trust." + scan.clock_trust) === "coverage.trust." + scan.clock_trust ? scan.clock_trust : t("coverage.trust." + scan.clock_trust))],
      [t("coverage.flags"), h("span", { class: "flags" }, scan.flags && scan.flags.length
        ? scan.flags.map((f) => h("span", { class: "badge flag", "data-flag": f }, flagLabel(f)))
        : t("coverage.no_flags"))],
      [t("coverage.guard"), h("span", { class: "guard", title: scan.user_id }, guardName(scan.user_id))],
      [t("coverage.device"), h("span", { class: "device", title: scan.device_id },
        [devices.get(scan.device_id), shortId(scan.device_id)].filter(Boolean).join(" "))],
      [t("coverage.scan_id"), h("code", { class: "scan-id" }, scan.id)],
    );
    // Photos of a scan are not in the API's ScanView yet; shown if the server adds them.
    let photos;
    if (Array.isArray(scan.photos)) {
      photos = scan.photos.length
        ? scan.photos.map((p) => {
          const sha = typeof p === "string" ? p : p.sha256;
          const src = `/v1/photos/${encodeURIComponent(sha)}`;
          return h("a", { href: src, target: "_blank", rel: "noopener" },
            h("img", { loading: "lazy", src: src + "?size=thumb", alt: t("coverage.photos") }));
        })
        : h("span", { class: "muted" }, t("coverage.no_photos"));
    } else {
      photos = h("span", { class: "muted photos-unavailable" }, t("coverage.photos_unavailable"));
    }
    rows.push([t("coverage.photos"), h("span", { class: "photos" }, photos)]);
    return h("div", { class: "scan" }, h("h4", {}, t("coverage.scan")),
      h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  }

  function slotBlock(s) {
    const rows = [
      [t("coverage.window"), t("coverage.window_fmt", { start: fmtTime(s.start, tz), end: clock(s.end, tz), grace: clock(s.grace_end, tz) })],
      [t("coverage.rule"), s.rule_name],
      [t("coverage.status"), badge(s.status)],
    ];
    if (s.excuse) {
      rows.push([t("coverage.excuse"), h("span", { class: "excuse" }, s.excuse.reason, " ",
        h("span", { class: "muted" }, `(${t("coverage.excuse_by", { by: guardName(s.excuse.by), at: fmtTime(s.excuse.at, tz) })})`))]);
    }
    return h("div", { class: "slot", "data-status": s.status, "data-rule": s.rule_id, "data-start": s.start },
      h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      scanBlock(s.scan));
  }

  async function openDetail(checkpoint, col) {
    if (!heat) return;
    const row = heat.rows.find((r) => r.checkpoint_id === checkpoint);
    if (!row || !(col >= 0 && col < heat.hours.length)) return;
    const seq = ++detailSeq;
    for (const el of document.querySelectorAll("#heatmap td.selected")) el.classList.remove("selected");
    const td = document.querySelector(`#heatmap tr[data-checkpoint="${CSS.escape(checkpoint)}"] td[data-col="${col}"]`);
    if (td) td.classList.add("selected");
    const hourLabel = heat.hours[col];
    setParams({ date: heat.date, checkpoint, hour: parseInt(hourLabel, 10) });
    const closeBtn = h("button", { type: "button", class: "close-detail", onclick: closeDetail }, t("coverage.detail_close"));
    const head = h("div", { class: "head" },
      h("h3", {}, t("coverage.detail_title", { checkpoint: `${row.code} ${row.name}`, date: heat.date, hour: hourLabel })),
      closeBtn);
    detail.hidden = false;
    delete detail.dataset.loaded;
    detail.dataset.checkpoint = checkpoint;
    detail.dataset.hour = parseInt(hourLabel, 10);
    detail.replaceChildren(head, h("p", { class: "muted" }, t("coverage.detail_loading")));
    const from = heat.hour_starts[col];
    const to = heat.hour_starts[col + 1] || heat.to;
    try {
      const list = await api(`/v1/estates/${eid}/slots`, { query: { from, to, status: "all", checkpoint } });
      if (seq !== detailSeq) return;
      const slots = list.slots;
      detail.replaceChildren(head, slots.length
        ? h("div", { class: "slots" }, slots.map(slotBlock))
        : h("p", { class: "muted" }, t("coverage.detail_none")));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      if (seq !== detailSeq) return;
      detail.replaceChildren(head, h("div", { class: "error", role: "alert" }, t("coverage.error", { detail: errorText(e) })));
    }
    detail.dataset.loaded = "1";
    detail.scrollIntoView({ block: "nearest" });
  }

  // ---------------------------------------------------------------- per guard / route
  const defFrom = addDays(today, -7);
  const defTo = addDays(today, -1);
  let pFrom = isDate(q.get("from")) ? q.get("from") : defFrom;
  let pTo = isDate(q.get("to")) ? q.get("to") : defTo;
  const fromInput = h("input", { type: "date", id: "period-from", value: pFrom, max: today });
  const toInput = h("input", { type: "date", id: "period-to", value: pTo, max: today });
  const periodMsg = h("span", { class: "inline-error", id: "period-error", role: "alert" });
  const periodNote = h("p", { class: "muted", id: "period-note" });
  const tablesHolder = h("div", { class: "cov-tables" });

  function coverageTable(id, labelKey, report, query, labelOf) {
    const n = (k) => ({ label: t("coverage.col." + k), value: (r) => r[k] });
    return table({
      id,
      columns: [
        { label: t(labelKey), value: (r) => labelOf(r), render: (r) => h("span", { title: r.key || "" }, labelOf(r)) },
        n("expected"), n("on_time"), n("late"), n("early"), n("missed"), n("excused"),
        { label: t("coverage.col.coverage"), value: (r) => pct(r.coverage) },
        { label: t("coverage.col.strict"), value: (r) => pct(r.strict_coverage) },
        { label: t("coverage.col.verified"), value: (r) => pct(r.verified_coverage) },
      ],
      rows: report.groups,
      csvHref: `/v1/estates/${eid}/coverage.csv?` + new URLSearchParams({ ...query, bom: 1 }),
    });
  }

  async function loadTables() {
    periodMsg.textContent = "";
    if (pFrom > pTo) {
      periodMsg.textContent = t("coverage.bad_period");
      return;
    }
    setParams({ from: pFrom === defFrom ? null : pFrom, to: pTo === defTo ? null : pTo });
    periodNote.textContent = t("coverage.period_note", { from: pFrom, to: pTo });
    const base = { from: pFrom, to: addDays(pTo, 1) };
    const qg = { ...base, group_by: "guard" };
    const qr = { ...base, group_by: "route" };
    const [g, r] = await Promise.allSettled([
      api(`/v1/estates/${eid}/coverage`, { query: qg }),
      api(`/v1/estates/${eid}/coverage`, { query: qr }),
    ]);
    const part = (res, title, id, labelKey, query, labelOf) => h("div", {},
      h("h3", {}, title),
      res.status === "fulfilled"
        ? coverageTable(id, labelKey, res.value, query, labelOf)
        : h("div", { class: "error", role: "alert" }, t("coverage.error", { detail: errorText(res.reason) })));
    tablesHolder.replaceChildren(
      part(g, t("coverage.by_guard"), "coverage-by-guard", "coverage.col.guard", qg,
        (row) => (row.key ? guardName(row.key) : t("coverage.no_guard"))),
      part(r, t("coverage.by_route"), "coverage-by-route", "coverage.col.route", qr, (row) => row.label));
  }

  const periodForm = h("form", { class: "toolbar", id: "period-form" },
    h("label", {}, t("coverage.from"), fromInput),
    h("label", {}, t("coverage.to"), toInput),
    h("button", { type: "submit", id: "period-apply" }, t("coverage.apply")),
    periodMsg);
  periodForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!isDate(fromInput.value) || !isDate(toInput.value)) return;
    pFrom = fromInput.value;
    pTo = toInput.value;
    loadTables();
  });

  // ---------------------------------------------------------------- page
  const trendSrc = "/console/charts/coverage-trend.svg?" + new URLSearchParams({ estate: estate.id, weeks: "8", lang: lang() });
  main.replaceChildren(
    h("h1", {}, t("coverage.title")),
    section(t("coverage.heatmap"),
      toolbar,
      h("p", { class: "muted" }, t("coverage.tz_note", { tz })),
      legend,
      mapHolder),
    section(t("coverage.trend"),
      h("img", { id: "trend", src: trendSrc, alt: t("coverage.trend_alt"), width: "960", height: "320", loading: "lazy" })),
    section(t("coverage.tables"), periodForm, periodNote, tablesHolder),
  );

  await Promise.all([loadHeatmap(), loadTables()]);

  // A linked cell: ?date=&checkpoint=&hour= opens its detail.
  const wantCp = q.get("checkpoint");
  const wantHour = q.get("hour");
  if (heat && wantCp && wantHour !== null && /^\d{1,2}$/.test(wantHour)) {
    const col = heat.hours.findIndex((x) => parseInt(x, 10) === Number(wantHour));
    if (col >= 0) await openDetail(wantCp, col);
  }
});

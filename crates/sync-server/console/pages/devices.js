// Devices (设备): each handset used by a member of the estate, its last sync, the seqs the
// server acknowledged and the gaps (facts still on the handset, or lost), its clock offset
// and app version; managers and admins can revoke a device.
//
// API: GET /v1/estates/{id}/devices, GET /v1/estates/{id}/members (the last user's name),
// POST /v1/devices/{id}/revoke (no body; answers the device, revoked).

import { runPage, api, t, h, table, section, registerMessages, fmtTime, hasRole, me, ApiError, lang } from "../core.js";

/** A device not heard from for this long is "not synced lately". */
const STALE_MS = 24 * 3600 * 1000;

registerMessages({
  zh: {
    "devices.title": "设备同步状况",
    "devices.summary.total": "设备", "devices.summary.stale": "超过 24 小时未同步", "devices.summary.gaps": "有缺号（数据未到）",
    "devices.summary.revoked": "已吊销",
    "devices.list": "巡更设备", "devices.hint": "“缺号”是已确认序号与最大序号之间没有到达服务器的记录：可能仍在手机上，也可能已丢失。时钟偏差 = 服务器时间 − 手机时间（最近一次上传时）。时间按小区时区 {tz} 显示。",
    "devices.col.name": "设备名称", "devices.col.platform": "平台", "devices.col.app_version": "应用版本",
    "devices.col.last_user": "最近使用人", "devices.col.last_seen": "最近同步", "devices.col.ago": "距今",
    "devices.col.acked": "已确认序号", "devices.col.max": "最大序号", "devices.col.gaps": "缺号",
    "devices.col.offset": "时钟偏差", "devices.col.revoked": "已吊销", "devices.col.id": "设备 ID",
    "devices.this": "本浏览器", "devices.unnamed": "（未命名）", "devices.yes": "是", "devices.no": "否", "devices.me": "我", "devices.user": "用户 {id}",
    "devices.ago.s": "刚刚", "devices.ago.m": "{n} 分钟前", "devices.ago.h": "{n} 小时前", "devices.ago.d": "{n} 天前",
    "devices.offset.unknown": "未知", "devices.offset.fast": "手机快 {v}", "devices.offset.slow": "手机慢 {v}",
    "devices.revoke": "吊销", "devices.revoke.confirm": "确认吊销“{name}”？该设备须重新登录才能同步。",
    "devices.revoke.yes": "确认吊销", "devices.revoke.no": "取消", "devices.revoked_ok": "已吊销设备“{name}”。",
    "devices.revoke.failed": "吊销失败",
  },
  en: {
    "devices.title": "Device sync health",
    "devices.summary.total": "Devices", "devices.summary.stale": "Not synced for 24 h", "devices.summary.gaps": "With gaps (facts not arrived)",
    "devices.summary.revoked": "Revoked",
    "devices.list": "Handsets", "devices.hint": "Gaps are the seqs between the acknowledged and the highest seq that never reached the server: still on the handset, or lost. Clock offset = server clock − handset clock at its last push. Times in the estate's zone, {tz}.",
    "devices.col.name": "Name", "devices.col.platform": "Platform", "devices.col.app_version": "App version",
    "devices.col.last_user": "Last user", "devices.col.last_seen": "Last sync", "devices.col.ago": "Ago",
    "devices.col.acked": "Acked seq", "devices.col.max": "Max seq", "devices.col.gaps": "Gaps",
    "devices.col.offset": "Clock offset", "devices.col.revoked": "Revoked", "devices.col.id": "Device id",
    "devices.this": "this browser", "devices.unnamed": "(no name)", "devices.yes": "yes", "devices.no": "no", "devices.me": "me", "devices.user": "user {id}",
    "devices.ago.s": "just now", "devices.ago.m": "{n} min ago", "devices.ago.h": "{n} h ago", "devices.ago.d": "{n} days ago",
    "devices.offset.unknown": "unknown", "devices.offset.fast": "handset {v} fast", "devices.offset.slow": "handset {v} slow",
    "devices.revoke": "Revoke", "devices.revoke.confirm": "Revoke \u201c{name}\u201d? It must sign in again to sync.",
    "devices.revoke.yes": "Yes, revoke", "devices.revoke.no": "Cancel", "devices.revoked_ok": "Device \u201c{name}\u201d revoked.",
    "devices.revoke.failed": "Revoke failed",
  },
});

const CSS = `
#devices tr.stale td { background: #fff8e6; }
#devices tr.revoked td { color: var(--muted); text-decoration: line-through; }
#devices tr.revoked td.keep, #devices tr.revoked td:last-child { text-decoration: none; }
#devices .gap { color: #fff; background: var(--missed); border-radius: 10px; padding: 0 7px; font-weight: 600; }
#devices .badge.this { margin-left: 6px; background: #dbe6ff; }
#devices th, #devices td:nth-child(5), #devices td:nth-child(6) { white-space: nowrap; }
#devices .num { font-variant-numeric: tabular-nums; }
#devices .confirm { display: inline-flex; gap: 6px; align-items: center; flex-wrap: wrap; background: #fdecec; padding: 4px 6px; border-radius: 4px; }
.dev-stats .stat.bad { color: #b42318; }
.ok-flash { color: #05603a; background: #ecfdf3; border: 1px solid #abefc6; padding: 6px 10px; border-radius: 4px; margin-bottom: 8px; }
`;

function ago(iso, now) {
  const ms = now - new Date(iso).getTime();
  if (!(ms >= 0) || ms < 60000) return t("devices.ago.s");
  if (ms < 3600000) return t("devices.ago.m", { n: Math.floor(ms / 60000) });
  if (ms < 2 * 86400000) return t("devices.ago.h", { n: Math.floor(ms / 3600000) });
  return t("devices.ago.d", { n: Math.floor(ms / 86400000) });
}

/** Server minus handset, in ms → "handset 1.2 s slow" (server ahead means the handset is behind). */
function offsetText(ms) {
  if (ms === null || ms === undefined) return t("devices.offset.unknown");
  const a = Math.abs(ms);
  const v = a < 1000 ? `${a} ms` : a < 120000 ? `${(a / 1000).toFixed(1)} s` : a < 7200000 ? `${Math.round(a / 60000)} min` : `${(a / 3600000).toFixed(1)} h`;
  if (ms === 0) return "0 ms";
  return ms > 0 ? t("devices.offset.slow", { v }) : t("devices.offset.fast", { v });
}

let flash = null;
let confirming = null;

runPage(async (estate, main) => {
  if (!document.getElementById("devices-css")) document.head.append(h("style", { id: "devices-css" }, CSS));
  await render(estate, main);
});

async function rerender(estate, main) {
  document.body.dataset.ready = "0";
  try {
    await render(estate, main);
  } catch (e) {
    main.replaceChildren(h("div", { class: "error", role: "alert" }, t("core.error"), ": ", e.message || String(e)));
  } finally {
    document.body.dataset.ready = "1";
  }
}

async function render(estate, main) {
  const [m, list, members] = await Promise.all([
    me(),
    api(`/v1/estates/${estate.id}/devices`),
    api(`/v1/estates/${estate.id}/members`).then((r) => r.members).catch(() => []),
  ]);
  const names = new Map(members.map((u) => [u.id, u.name]));
  const now = Date.now();
  const tz = estate.timezone;
  const canRevoke = hasRole(estate, "manager", "admin");
  const devices = [...list.devices].sort((a, b) => (a.last_seen_at < b.last_seen_at ? 1 : a.last_seen_at > b.last_seen_at ? -1 : 0));
  const user = (id) => {
    if (!id) return "";
    const n = names.get(id) || (id === m.user.id ? m.user.name : null);
    if (!n) return t("devices.user", { id: id.slice(-6) });
    return id === m.user.id ? `${n} (${t("devices.me")})` : n;
  };
  const name = (d) => d.name || t("devices.unnamed");
  const stale = (d) => !d.revoked && now - new Date(d.last_seen_at).getTime() > STALE_MS;

  const revokeCell = (d) => {
    const text = d.revoked ? t("devices.yes") : t("devices.no");
    // This browser's own session is a device too: revoking it would sign the user out here.
    if (d.revoked || !canRevoke || d.id === m.device_id) return text;
    if (confirming === d.id) {
      return h("span", { class: "confirm", role: "group" },
        t("devices.revoke.confirm", { name: name(d) }),
        h("button", { type: "button", class: "revoke-yes", onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await api(`/v1/devices/${encodeURIComponent(d.id)}/revoke`, { method: "POST" });
            flash = h("div", { class: "ok-flash card", role: "status", id: "revoke-ok" }, t("devices.revoked_ok", { name: name(d) }));
          } catch (e) {
            const p = e instanceof ApiError ? e.problem || {} : {};
            flash = h("div", { class: "error", role: "alert", id: "revoke-error" }, `${t("devices.revoke.failed")} (${e.status || "?"}): `, p.detail || p.title || e.message);
          }
          confirming = null;
          await rerender(estate, main);
        } }, t("devices.revoke.yes")),
        h("button", { type: "button", class: "revoke-no", onclick: () => { confirming = null; rerender(estate, main); } }, t("devices.revoke.no")));
    }
    return h("span", {}, text, " ",
      h("button", { type: "button", class: "revoke", "data-device": d.id, onclick: () => { confirming = d.id; flash = null; rerender(estate, main); } }, t("devices.revoke")));
  };

  const columns = [
    { label: t("devices.col.name"), value: name, render: (d) => h("span", { title: d.id }, name(d),
      d.id === m.device_id ? h("span", { class: "badge this" }, t("devices.this")) : null) },
    { label: t("devices.col.platform"), value: (d) => d.platform || "" },
    { label: t("devices.col.app_version"), value: (d) => d.app_version || "",
      render: (d) => (d.app_version || "").length > 28 ? h("span", { title: d.app_version }, d.app_version.slice(0, 27) + "…") : d.app_version || "" },
    { label: t("devices.col.last_user"), value: (d) => user(d.last_user_id) },
    { label: t("devices.col.last_seen"), value: (d) => fmtTime(d.last_seen_at, tz) },
    { label: t("devices.col.ago"), value: (d) => ago(d.last_seen_at, now) },
    { label: t("devices.col.acked"), value: (d) => d.acked_through_seq, render: (d) => h("span", { class: "num" }, String(d.acked_through_seq)) },
    { label: t("devices.col.max"), value: (d) => d.max_seq, render: (d) => h("span", { class: "num" }, String(d.max_seq)) },
    { label: t("devices.col.gaps"), value: (d) => d.missing_seqs,
      render: (d) => h("span", { class: d.missing_seqs > 0 ? "gap num" : "num", "data-gaps": String(d.missing_seqs) }, String(d.missing_seqs)) },
    { label: t("devices.col.offset"), value: (d) => offsetText(d.last_clock_offset_ms) },
    { label: t("devices.col.revoked"), value: (d) => (d.revoked ? t("devices.yes") : t("devices.no")), render: revokeCell },
    { label: t("devices.col.id"), value: (d) => d.id, render: (d) => h("code", { class: "muted" }, d.id.slice(-12)) },
  ];
  const stat = (n, key, bad) => h("div", { class: "card" }, h("div", { class: `stat${bad && n > 0 ? " bad" : ""}` }, String(n), h("small", {}, t(key))));
  main.replaceChildren(...[
    h("h1", {}, t("devices.title")),
    flash,
    h("div", { class: "grid dev-stats" },
      stat(devices.length, "devices.summary.total"),
      stat(devices.filter(stale).length, "devices.summary.stale", true),
      stat(devices.filter((d) => d.missing_seqs > 0).length, "devices.summary.gaps", true),
      stat(devices.filter((d) => d.revoked).length, "devices.summary.revoked")),
    section(t("devices.list"),
      h("p", { class: "muted" }, t("devices.hint", { tz })),
      table({ id: "devices", columns, rows: devices, csvName: "devices.csv",
        rowClass: (d) => [d.revoked ? "revoked" : "", stale(d) ? "stale" : "", d.missing_seqs > 0 ? "has-gap" : ""].filter(Boolean).join(" ") || null }))].filter(Boolean));
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
}

// One hazard ticket (隐患单): header, before / after / verification photos side by side, the
// whole timeline (rejected events shown as such), the printable rectification notice, and
// the actions the caller's role allows in the ticket's state.
//
// API: GET /v1/hazards/{id} (the ticket with its timeline), POST /v1/hazards/{id}/events
// (an action: `{id: UUIDv7, action, ...fields, photos?}`, the same validation and fold as a
// pushed hazard_event; a refusal is a problem+json with `code`), PUT /v1/photos/{sha256}
// (the verification photo's bytes, after the event that declares it), GET /v1/photos/{sha256}
// (?size=thumb), GET /v1/hazards/{id}/notice, GET /v1/estates/{id}/zones and /checkpoints
// (names), GET /v1/estates/{id}/members (names; the engineers to assign to),
// GET /v1/estates/{id}/hazard-policy (default due hours).

import { runPage, api, t, h, registerMessages, fmtTime, pageHref, me, hasRole, csrfToken, ApiError, lang } from "../core.js";

const OVERSIGHT = ["supervisor", "manager", "admin"];
const MANAGEMENT = ["manager", "admin"];
const OPEN_BUT_DONE = ["reported", "assigned", "in_rectification", "extension_requested"];

/**
 * The console's actions, as shared-core's hazard state machine allows them
 * (hazard::fold: allowed_roles, state_allows, and the verifier-is-not-the-fixer rule).
 */
const ACTIONS = [
  { action: "assign", roles: OVERSIGHT, states: OPEN_BUT_DONE },
  { action: "approve_extension", roles: OVERSIGHT, states: ["extension_requested"] },
  { action: "deny_extension", roles: OVERSIGHT, states: ["extension_requested"] },
  { action: "verify", roles: OVERSIGHT, states: ["pending_verification"], ok: (tk, myself) => tk.fixed_by !== myself.id },
  { action: "cancel", roles: OVERSIGHT, states: ["reported"] },
  { action: "reopen", roles: MANAGEMENT, states: ["closed"] },
  { action: "comment", roles: null, states: null },
];

registerMessages({
  zh: {
    "hazard.back": "← 隐患看板", "hazard.notice": "打印整改通知单",
    "hazard.f.code": "编号", "hazard.f.state": "状态", "hazard.f.grade": "等级", "hazard.f.category": "类别",
    "hazard.f.zone": "区域", "hazard.f.location": "位置", "hazard.f.checkpoint": "巡更点", "hazard.f.reporter": "上报人",
    "hazard.f.reported_at": "上报时间", "hazard.f.assignee": "整改责任人", "hazard.f.assigned_at": "指派时间",
    "hazard.f.due": "整改期限", "hazard.f.overdue": "逾期", "hazard.f.fixed": "整改提交", "hazard.f.verified": "复查验收",
    "hazard.f.closed_at": "销号时间", "hazard.f.cancel_reason": "撤销原因", "hazard.f.reopen_count": "复查不合格 / 重新打开次数",
    "hazard.f.description": "隐患描述",
    "hazard.overdue": "已逾期", "hazard.not_overdue": "未逾期", "hazard.unassigned": "未指派",
    "hazard.due_explicit": "（指定期限）", "hazard.due_default": "（按等级默认）",
    "hazard.plan": "整改方案", "hazard.plan.goal": "整改目标", "hazard.plan.measures": "整改措施", "hazard.plan.funds": "整改资金",
    "hazard.plan.owner": "负责人", "hazard.plan.deadline": "完成时限",
    "hazard.extension": "延期申请", "hazard.extension.text": "{who} 申请延期至 {due}：{reason}",
    "hazard.photos": "照片", "hazard.photos.before": "整改前", "hazard.photos.after": "整改后",
    "hazard.photos.verification": "复查验收", "hazard.photos.none": "无照片",
    "hazard.photos.missing": "照片尚未上传（还在手机上）", "hazard.photos.rejected": "所属记录被拒绝",
    "hazard.timeline": "处理记录", "hazard.rejected": "被拒绝", "hazard.state_after": "之后状态：{state}",
    "hazard.actions": "操作", "hazard.actions.none": "以你的角色，此状态下没有可做的操作。",
    "hazard.actions.self_fixed": "整改由你提交，复查须由其他人进行。",
    "hazard.submit": "提交", "hazard.close_form": "取消", "hazard.saved": "已保存：{action}",
    "hazard.refused": "服务器拒绝了该操作", "hazard.refused.code": "原因代码",
    "hazard.assign.engineer": "工程人员（维修工）", "hazard.assign.choose": "请选择工程人员", "hazard.assign.current": "当前整改责任人",
    "hazard.assign.no_engineers": "本小区没有工程人员账号，无法指派。",
    "hazard.assign.due": "整改期限（{tz}）", "hazard.assign.due_hint": "留空：按等级默认（一般 {g} 小时、重大 {m} 小时，从上报起算）",
    "hazard.ext.due": "批准的期限（{tz}）", "hazard.ext.due_hint": "留空：按申请的日期",
    "hazard.reason": "原因", "hazard.reason_opt": "原因（可选）", "hazard.comment": "备注",
    "hazard.verify.outcome": "复查结果", "hazard.verify.pass": "合格（销号）", "hazard.verify.fail": "不合格（退回整改）",
    "hazard.verify.note": "复查意见", "hazard.verify.photo": "复查照片（合格时必须）",
    "hazard.verify.photo_needed": "复查合格需要一张复查照片。", "hazard.verify.reason_needed": "复查不合格须填写意见。",
    "hazard.needed": "必填",
    "hazard.upload_failed": "复查结果已保存，但照片上传失败：{msg}", "hazard.upload_retry": "重新上传照片",
    "hazard.action.report": "上报", "hazard.action.edit": "修改", "hazard.action.assign": "指派",
    "hazard.action.start": "开始整改", "hazard.action.plan": "整改方案", "hazard.action.request_extension": "申请延期",
    "hazard.action.approve_extension": "批准延期", "hazard.action.deny_extension": "驳回延期",
    "hazard.action.submit_fix": "提交整改", "hazard.action.verify_pass": "复查合格", "hazard.action.verify_fail": "复查不合格",
    "hazard.action.verify": "复查验收", "hazard.action.cancel": "撤销", "hazard.action.reopen": "重新打开",
    "hazard.action.comment": "备注",
    "hazard.d.assignee": "整改责任人：{who}", "hazard.d.due": "期限：{due}", "hazard.d.reason": "原因：{text}",
    "hazard.d.note": "说明：{text}", "hazard.d.text": "{text}", "hazard.d.grade": "等级：{text}",
    "hazard.d.category": "类别：{text}", "hazard.d.title": "名称：{text}", "hazard.d.description": "描述：{text}",
    "hazard.d.location": "位置：{text}", "hazard.d.plan": "方案：{text}",
    "hazard.me": "我", "hazard.user": "用户 {id}",
    "hazard.state.reported": "已上报", "hazard.state.assigned": "已指派", "hazard.state.in_rectification": "整改中",
    "hazard.state.extension_requested": "延期申请中", "hazard.state.pending_verification": "待复查验收",
    "hazard.state.closed": "已验收销号", "hazard.state.cancelled": "已撤销",
    "hazard.grade.general": "一般隐患", "hazard.grade.major": "重大隐患",
    "hazard.cat.fire": "消防", "hazard.cat.electrical": "电气", "hazard.cat.equipment": "设备",
    "hazard.cat.access": "出入口", "hazard.cat.security": "安防", "hazard.cat.structural": "建筑", "hazard.cat.e_bike": "电动车",
    "hazard.code.role_forbidden": "角色无权进行此操作", "hazard.code.invalid_transition": "当前状态不允许此操作",
    "hazard.code.not_assignee": "只有整改责任人可以进行此操作", "hazard.code.evidence_required": "缺少必需的照片",
    "hazard.code.self_verification": "整改人不能复查自己的整改", "hazard.code.plan_required": "重大隐患须先有整改方案",
    "hazard.code.due_in_past": "期限早于当前时间", "hazard.code.already_reported": "已经上报过",
    "hazard.code.not_reported": "隐患尚未上报", "hazard.code.unknown_assignee": "不是本小区的工程人员",
    "hazard.code.id_conflict": "记录编号冲突", "hazard.code.invalid_value": "取值无效", "hazard.code.missing_field": "缺少必填项",
  },
  en: {
    "hazard.back": "← Hazard board", "hazard.notice": "Print rectification notice",
    "hazard.f.code": "No.", "hazard.f.state": "State", "hazard.f.grade": "Grade", "hazard.f.category": "Category",
    "hazard.f.zone": "Zone", "hazard.f.location": "Location", "hazard.f.checkpoint": "Checkpoint", "hazard.f.reporter": "Reported by",
    "hazard.f.reported_at": "Reported", "hazard.f.assignee": "Assignee", "hazard.f.assigned_at": "Assigned",
    "hazard.f.due": "Due", "hazard.f.overdue": "Overdue", "hazard.f.fixed": "Fix submitted", "hazard.f.verified": "Verified",
    "hazard.f.closed_at": "Closed", "hazard.f.cancel_reason": "Cancelled because", "hazard.f.reopen_count": "Failed verifications / reopenings",
    "hazard.f.description": "Description",
    "hazard.overdue": "Overdue", "hazard.not_overdue": "Not overdue", "hazard.unassigned": "Not assigned",
    "hazard.due_explicit": "(set explicitly)", "hazard.due_default": "(default for the grade)",
    "hazard.plan": "Rectification plan", "hazard.plan.goal": "Goal", "hazard.plan.measures": "Measures", "hazard.plan.funds": "Funds",
    "hazard.plan.owner": "Owner", "hazard.plan.deadline": "Deadline",
    "hazard.extension": "Extension request", "hazard.extension.text": "{who} asks for {due}: {reason}",
    "hazard.photos": "Photos", "hazard.photos.before": "Before", "hazard.photos.after": "After (rectification)",
    "hazard.photos.verification": "Verification", "hazard.photos.none": "No photos",
    "hazard.photos.missing": "Not uploaded yet (still on the handset)", "hazard.photos.rejected": "its event was rejected",
    "hazard.timeline": "Timeline", "hazard.rejected": "Rejected", "hazard.state_after": "then: {state}",
    "hazard.actions": "Actions", "hazard.actions.none": "Your role has no action on a ticket in this state.",
    "hazard.actions.self_fixed": "You submitted the fix; someone else must verify it.",
    "hazard.submit": "Submit", "hazard.close_form": "Cancel", "hazard.saved": "Saved: {action}",
    "hazard.refused": "The server refused the action", "hazard.refused.code": "Code",
    "hazard.assign.engineer": "Engineer", "hazard.assign.choose": "Choose an engineer", "hazard.assign.current": "current assignee",
    "hazard.assign.no_engineers": "The estate has no engineer account to assign to.",
    "hazard.assign.due": "Due ({tz})", "hazard.assign.due_hint": "Empty: the grade's default (general {g} h, major {m} h from the report)",
    "hazard.ext.due": "Approved due date ({tz})", "hazard.ext.due_hint": "Empty: the date asked for",
    "hazard.reason": "Reason", "hazard.reason_opt": "Reason (optional)", "hazard.comment": "Comment",
    "hazard.verify.outcome": "Outcome", "hazard.verify.pass": "Pass (close out)", "hazard.verify.fail": "Fail (back to rectification)",
    "hazard.verify.note": "Comment", "hazard.verify.photo": "Verification photo (needed to pass)",
    "hazard.verify.photo_needed": "Passing needs a verification photo.", "hazard.verify.reason_needed": "A failed verification needs a comment.",
    "hazard.needed": "required",
    "hazard.upload_failed": "The verification is saved, but the photo upload failed: {msg}", "hazard.upload_retry": "Upload the photo again",
    "hazard.action.report": "Report", "hazard.action.edit": "Edit", "hazard.action.assign": "Assign",
    "hazard.action.start": "Start rectification", "hazard.action.plan": "Rectification plan", "hazard.action.request_extension": "Request extension",
    "hazard.action.approve_extension": "Approve extension", "hazard.action.deny_extension": "Deny extension",
    "hazard.action.submit_fix": "Submit fix", "hazard.action.verify_pass": "Verification passed", "hazard.action.verify_fail": "Verification failed",
    "hazard.action.verify": "Verify", "hazard.action.cancel": "Cancel ticket", "hazard.action.reopen": "Reopen",
    "hazard.action.comment": "Comment",
    "hazard.d.assignee": "Assignee: {who}", "hazard.d.due": "Due: {due}", "hazard.d.reason": "Reason: {text}",
    "hazard.d.note": "Note: {text}", "hazard.d.text": "{text}", "hazard.d.grade": "Grade: {text}",
    "hazard.d.category": "Category: {text}", "hazard.d.title": "Title: {text}", "hazard.d.description": "Description: {text}",
    "hazard.d.location": "Location: {text}", "hazard.d.plan": "Plan: {text}",
    "hazard.me": "me", "hazard.user": "user {id}",
    "hazard.state.reported": "Reported", "hazard.state.assigned": "Assigned", "hazard.state.in_rectification": "In rectification",
    "hazard.state.extension_requested": "Extension requested", "hazard.state.pending_verification": "Pending verification",
    "hazard.state.closed": "Closed", "hazard.state.cancelled": "Cancelled",
    "hazard.grade.general": "General", "hazard.grade.major": "Major",
    "hazard.cat.fire": "Fire", "hazard.cat.electrical": "Electrical", "hazard.cat.equipment": "Equipment",
    "hazard.cat.access": "Access", "hazard.cat.security": "Security", "hazard.cat.structural": "Structure", "hazard.cat.e_bike": "E-bikes",
    "hazard.code.role_forbidden": "Your role may not do this", "hazard.code.invalid_transition": "Not allowed in this state",
    "hazard.code.not_assignee": "Only the assignee may do this", "hazard.code.evidence_required": "A required photo is missing",
    "hazard.code.self_verification": "The fixer may not verify their own fix", "hazard.code.plan_required": "A major hazard needs its plan first",
    "hazard.code.due_in_past": "The due date is in the past", "hazard.code.already_reported": "Already reported",
    "hazard.code.not_reported": "Not reported yet", "hazard.code.unknown_assignee": "Not an engineer of this estate",
    "hazard.code.id_conflict": "Event id conflict", "hazard.code.invalid_value": "Invalid value", "hazard.code.missing_field": "A required field is missing",
  },
});

const CSS = `
.hz-head { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.hz-head h1 { margin: 0; overflow-wrap: anywhere; }
.hz-head .spacer { flex: 1; }
dl.hz-fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 4px 16px; margin: 0; }
dl.hz-fields div { display: flex; gap: 8px; } dl.hz-fields dt { color: var(--muted); min-width: 7em; } dl.hz-fields dd { margin: 0; overflow-wrap: anywhere; }
dl.hz-fields .wide { grid-column: 1 / -1; }
.st { font-weight: 600; } .od { color: #b42318; font-weight: 700; }
.badge.g-major { background: var(--missed); color: #fff; }
#photos { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
#photos .photo-col { border: 1px solid var(--line); border-radius: 6px; padding: 8px; min-height: 120px; }
#photos h3 { font-size: 14px; margin: 0 0 6px; }
figure.ph { margin: 0 0 8px; } figure.ph img { width: 100%; max-height: 240px; object-fit: contain; background: #f0f2f6; border-radius: 4px; }
figure.ph figcaption { font-size: 12px; color: var(--muted); }
.ph-missing { display: grid; place-items: center; height: 90px; background: repeating-linear-gradient(45deg, #f3f4f7, #f3f4f7 8px, #e9ebf0 8px, #e9ebf0 16px); color: var(--muted); font-size: 12px; border-radius: 4px; text-align: center; padding: 4px; }
ol#timeline { list-style: none; margin: 0; padding: 0 0 0 14px; border-left: 2px solid var(--line); }
ol#timeline li { position: relative; padding: 4px 0 10px 10px; }
ol#timeline li::before { content: ""; position: absolute; left: -21px; top: 9px; width: 10px; height: 10px; border-radius: 50%; background: var(--accent); }
ol#timeline li.rejected::before { background: var(--missed); }
ol#timeline li.rejected .what { text-decoration: line-through; color: var(--muted); }
ol#timeline .when { color: var(--muted); font-size: 12px; margin-right: 8px; }
ol#timeline .what { font-weight: 600; }
ol#timeline .rej { color: #9b1c1c; background: #fdecec; border-radius: 4px; padding: 2px 6px; margin-top: 2px; font-size: 13px; }
ol#timeline .det { font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere; }
ol#timeline .thumbs img { height: 48px; margin: 2px 4px 0 0; border-radius: 3px; }
.hz-actions { display: flex; gap: 8px; flex-wrap: wrap; }
form.action-form { display: grid; gap: 8px; max-width: 560px; margin-top: 10px; padding: 10px; background: #f6f8fc; border: 1px solid var(--line); border-radius: 6px; }
form.action-form label { display: grid; gap: 2px; } form.action-form .row { display: flex; gap: 12px; flex-wrap: wrap; }
form.action-form .row label { display: flex; gap: 4px; align-items: center; }
form.action-form textarea { min-height: 60px; font: inherit; } form.action-form .hint { font-size: 12px; color: var(--muted); }
.ok-flash { color: #05603a; background: #ecfdf3; border: 1px solid #abefc6; padding: 6px 10px; border-radius: 4px; margin-bottom: 8px; }
@media (max-width: 800px) { #photos { grid-template-columns: 1fr; } }
`;

// ---------------------------------------------------------------- helpers

const label = (prefix, v) => {
  const k = `hazard.${prefix}.${v}`;
  const s = t(k);
  return s === k ? v : s;
};
const stateLabel = (s) => label("state", s);
const gradeLabel = (g) => label("grade", g);
const categoryLabel = (c) => label("cat", c);
const actionLabel = (a) => label("action", a);
const codeLabel = (c) => label("code", c);

/** A user's name from the estate's members ("(me)" for the caller); else the id's last digits. */
function userLabel(id, names, myself) {
  if (!id) return "";
  const name = names.get(id) || (id === myself.id ? myself.name : null);
  if (!name) return t("hazard.user", { id: id.slice(-6) });
  return id === myself.id ? `${name} (${t("hazard.me")})` : name;
}

/** A UUIDv7 (event and photo ids; the same id on a retry makes it idempotent). */
function uuidv7() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (b[6] & 0x0f);
  b[8] = 0x80 | (b[8] & 0x3f);
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** SHA-256 (hex) of bytes: WebCrypto where the page is a secure context, else plain JS. */
async function sha256Hex(buf) {
  if (globalThis.crypto?.subtle) {
    const d = await crypto.subtle.digest("SHA-256", buf);
    return [...new Uint8Array(d)].map((v) => v.toString(16).padStart(2, "0")).join("");
  }
  return sha256Js(new Uint8Array(buf));
}

function sha256Js(data) {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = data.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[len] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
  dv.setUint32(padded.length - 4, (len * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += hh;
  }
  return [...H].map((v) => v.toString(16).padStart(8, "0")).join("");
}

/** Milliseconds east of UTC of `tz` at the instant `ms`. */
function tzOffset(ms, tz) {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

/** A `datetime-local` value read as a wall-clock time in the estate's zone → RFC 3339 UTC. */
function zonedToIso(value, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let ms = wall - tzOffset(wall, tz);
  ms = wall - tzOffset(ms, tz);
  return new Date(ms).toISOString();
}

/** An instant → a `datetime-local` value in the estate's zone. */
function isoToZoned(iso, tz) {
  return iso ? fmtTime(iso, tz).replace(" ", "T") : "";
}

/** PUT a photo's bytes (the core `api()` only sends JSON). */
async function putPhoto(sha, file) {
  const resp = await fetch(`/v1/photos/${sha}`, {
    method: "PUT", credentials: "same-origin", body: file,
    headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": csrfToken(), Accept: "application/json" },
  });
  if (!resp.ok) {
    let problem = null;
    try { problem = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, problem);
  }
}

/** A refusal, readable: the problem's title and detail, its rejection code, field errors. */
function problemBox(e) {
  const p = e instanceof ApiError ? e.problem || {} : {};
  return h("div", { class: "error", role: "alert", id: "action-error" },
    h("strong", {}, t("hazard.refused"), ` (${e.status || "?"})`), ": ",
    p.detail || p.title || e.message || String(e),
    p.code ? h("div", {}, `${t("hazard.refused.code")}: ${p.code} — ${codeLabel(p.code)}`) : null,
    Array.isArray(p.errors) && p.errors.length ? h("ul", {}, p.errors.map((x) => h("li", {}, `${x.path}: ${x.message}`))) : null);
}

// ---------------------------------------------------------------- page

let state = { flash: null, openAction: null, eventId: null, photoId: null, pendingUpload: null };

runPage(async (estate, main) => {
  if (!document.getElementById("hazard-css")) document.head.append(h("style", { id: "hazard-css" }, CSS));
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
  const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[2] || "");
  const [m, tk, members, zones, checkpoints] = await Promise.all([
    me(),
    api(`/v1/hazards/${encodeURIComponent(id)}`),
    api(`/v1/estates/${estate.id}/members`).then((r) => r.members).catch(() => []),
    api(`/v1/estates/${estate.id}/zones`).then((r) => r.items).catch(() => []),
    api(`/v1/estates/${estate.id}/checkpoints`).then((r) => r.items).catch(() => []),
  ]);
  const myself = m.user;
  const tz = estate.timezone;
  const names = new Map(members.map((u) => [u.id, u.name]));
  const who = (u) => userLabel(u, names, myself);
  const time = (v) => fmtTime(v, tz);
  document.title = `${tk.code} · ${tk.title}`;

  // ---- header
  const cp = checkpoints.find((c) => c.id === tk.location?.checkpoint_id);
  const zoneId = tk.location?.zone_id || cp?.zone_id;
  const zone = zones.find((z) => z.id === zoneId);
  const field = (key, value, cls) => (value === null || value === undefined || value === "" ? null
    : h("div", { class: cls }, h("dt", {}, t(`hazard.f.${key}`)), h("dd", { "data-field": key }, value)));
  const open = tk.state !== "closed" && tk.state !== "cancelled";
  const header = h("section", { class: "card", id: "ticket" },
    h("div", { class: "hz-head" },
      h("h1", { id: "ticket-title" }, tk.title),
      h("span", { class: `badge g-${tk.grade}` }, gradeLabel(tk.grade)),
      h("span", { class: "st", id: "ticket-state", "data-state": tk.state }, stateLabel(tk.state)),
      tk.overdue ? h("span", { class: "od", id: "ticket-overdue" }, t("hazard.overdue")) : null,
      h("span", { class: "spacer" }),
      h("a", { id: "notice", href: `/v1/hazards/${encodeURIComponent(tk.id)}/notice`, target: "_blank", rel: "noopener" }, t("hazard.notice"))),
    h("dl", { class: "hz-fields" },
      field("code", tk.code),
      field("state", stateLabel(tk.state)),
      field("grade", gradeLabel(tk.grade)),
      field("category", categoryLabel(tk.category)),
      field("zone", zone ? zone.name || zone.code : null),
      field("checkpoint", cp ? `${cp.code} ${cp.name}` : null),
      field("location", tk.location?.text),
      field("reporter", who(tk.reporter)),
      field("reported_at", time(tk.reported_at)),
      field("assignee", tk.assignee ? who(tk.assignee) : t("hazard.unassigned")),
      field("assigned_at", tk.assigned_at ? time(tk.assigned_at) : null),
      field("due", `${time(tk.due_at)} ${tk.due_explicit ? t("hazard.due_explicit") : t("hazard.due_default")}`),
      field("overdue", open ? (tk.overdue ? h("span", { class: "od" }, t("hazard.overdue")) : t("hazard.not_overdue")) : null),
      field("fixed", tk.fixed_by ? `${who(tk.fixed_by)} · ${time(tk.fixed_at)}` : null),
      field("verified", tk.verified_by ? who(tk.verified_by) : null),
      field("closed_at", tk.closed_at ? time(tk.closed_at) : null),
      field("cancel_reason", tk.cancel_reason),
      field("reopen_count", tk.reopen_count ? String(tk.reopen_count) : null),
      field("description", tk.description, "wide")),
    tk.extension ? h("p", { class: "error", id: "extension" }, h("strong", {}, t("hazard.extension"), ": "),
      t("hazard.extension.text", { who: who(tk.extension.requested_by), due: time(tk.extension.due_at), reason: tk.extension.reason })) : null,
    tk.plan ? h("div", { id: "plan" }, h("h2", {}, t("hazard.plan")), h("dl", { class: "hz-fields" },
      ["goal", "measures", "funds", "owner"].map((k) => h("div", { class: k === "funds" || k === "owner" ? null : "wide" }, h("dt", {}, t(`hazard.plan.${k}`)), h("dd", {}, tk.plan[k]))),
      h("div", {}, h("dt", {}, t("hazard.plan.deadline")), h("dd", {}, time(tk.plan.deadline))))) : null);

  // ---- actions
  const allowed = ACTIONS.filter((a) =>
    (!a.roles || hasRole(estate, ...a.roles)) && (!a.states || a.states.includes(tk.state)) && (!a.ok || a.ok(tk, myself)));
  const selfFixed = tk.state === "pending_verification" && tk.fixed_by === myself.id && hasRole(estate, ...OVERSIGHT);
  const rr = () => rerender(estate, main);
  if (state.openAction && !allowed.some((a) => a.action === state.openAction)) state.openAction = null;
  const formHost = h("div", { id: "action-form-host" });
  const openForm = async (action) => {
    state.openAction = action;
    state.eventId = uuidv7();
    state.flash = null;
    for (const b of actionsBox.querySelectorAll("button[data-action]")) b.setAttribute("aria-expanded", String(b.dataset.action === action));
    formHost.replaceChildren(await actionForm(action, { tk, estate, members, who, rr }));
    formHost.querySelector("select, input, textarea")?.focus();
  };
  const actionsBox = h("section", { class: "card", id: "actions" },
    h("h2", {}, t("hazard.actions")),
    state.flash ? h("div", { class: "ok-flash", role: "status", id: "action-ok" }, state.flash) : null,
    state.pendingUpload ? h("div", { class: "error", role: "alert", id: "upload-error" },
      t("hazard.upload_failed", { msg: state.pendingUpload.msg }), " ",
      h("button", { type: "button", id: "upload-retry", onclick: async () => {
        const pu = state.pendingUpload;
        try {
          await putPhoto(pu.sha, pu.file);
          state.pendingUpload = null;
        } catch (e) {
          pu.msg = e.message;
        }
        rr();
      } }, t("hazard.upload_retry"))) : null,
    allowed.length === 0 ? h("p", { class: "muted" }, t("hazard.actions.none")) : null,
    selfFixed ? h("p", { class: "muted" }, t("hazard.actions.self_fixed")) : null,
    h("div", { class: "hz-actions" }, allowed.map((a) =>
      h("button", { type: "button", "data-action": a.action, "aria-expanded": "false", onclick: () => openForm(a.action) }, actionLabel(a.action)))),
    formHost);

  // ---- photos: before / after / verification, side by side
  const photosOf = (role) => tk.timeline.flatMap((e) => e.photos.filter((p) => p.role === role).map((p) => ({ p, e })));
  const figure = ({ p, e }) => h("figure", { class: "ph", "data-sha256": p.sha256, "data-received": String(p.received) },
    p.received
      ? h("a", { href: `/v1/photos/${p.sha256}`, target: "_blank", rel: "noopener" },
          h("img", { src: `/v1/photos/${p.sha256}?size=thumb`, loading: "lazy", alt: actionLabel(e.action),
            onerror: (ev) => { const img = ev.target; if (!img.dataset.fallback) { img.dataset.fallback = "1"; img.src = `/v1/photos/${p.sha256}`; } } }))
      : h("div", { class: "ph-missing" }, t("hazard.photos.missing")),
    h("figcaption", {}, `${actionLabel(e.action)} · ${who(e.actor)} · ${time(e.at)}`,
      e.status === "rejected" ? ` · ${t("hazard.photos.rejected")}` : ""));
  const photos = h("section", { class: "card" }, h("h2", {}, t("hazard.photos")),
    h("div", { id: "photos" }, ["before", "after", "verification"].map((role) => {
      const list = photosOf(role);
      return h("div", { class: "photo-col", "data-role": role },
        h("h3", {}, t(`hazard.photos.${role}`), list.length ? ` (${list.length})` : ""),
        list.length ? list.map(figure) : h("p", { class: "muted" }, t("hazard.photos.none")));
    })));

  // ---- timeline
  const details = (e) => {
    const d = e.data || {};
    const out = [];
    const text = (k, v) => out.push(t(`hazard.d.${k}`, { text: v }));
    if (e.action === "report" || e.action === "edit") {
      if (d.title) text("title", d.title);
      if (d.grade) text("grade", gradeLabel(d.grade));
      if (d.category) text("category", categoryLabel(d.category));
      if (d.location?.text) text("location", d.location.text);
      if (d.description) text("description", d.description);
    }
    if (d.assignee) out.push(t("hazard.d.assignee", { who: who(d.assignee) }));
    if (d.due_at) out.push(t("hazard.d.due", { due: time(d.due_at) }));
    if (d.plan) text("plan", [d.plan.goal, d.plan.measures, d.plan.funds, d.plan.owner, time(d.plan.deadline)].filter(Boolean).join(" · "));
    if (d.reason) text("reason", d.reason);
    if (d.note) text("note", d.note);
    if (d.text) text("text", d.text);
    return out;
  };
  const timeline = h("section", { class: "card" }, h("h2", {}, t("hazard.timeline")),
    h("ol", { id: "timeline" }, tk.timeline.map((e) => h("li", {
      class: e.status === "rejected" ? "rejected" : "accepted", "data-action": e.action, "data-status": e.status, "data-event-id": e.event_id,
    },
    h("span", { class: "when" }, fmtTime(e.at, tz, true)),
    h("span", { class: "what" }, actionLabel(e.action)), " · ", h("span", { class: "who" }, who(e.actor)),
    e.status === "accepted" ? h("span", { class: "muted" }, " · ", t("hazard.state_after", { state: stateLabel(e.state_after) })) : null,
    e.status === "rejected" ? h("div", { class: "rej" }, h("strong", {}, t("hazard.rejected")), ": ",
      e.code ? `${codeLabel(e.code)} (${e.code})` : "", e.reason ? ` — ${e.reason}` : "") : null,
    details(e).map((s) => h("div", { class: "det" }, s)),
    e.photos.some((p) => p.received) ? h("div", { class: "thumbs" }, e.photos.filter((p) => p.received).map((p) =>
      h("a", { href: `/v1/photos/${p.sha256}`, target: "_blank", rel: "noopener", title: label("photos", p.role) },
        h("img", { src: `/v1/photos/${p.sha256}?size=thumb`, loading: "lazy", alt: label("photos", p.role) })))) : null))));

  main.replaceChildren(...[
    h("p", {}, h("a", { href: pageHref("/console/hazards", estate), id: "back" }, t("hazard.back"))),
    header, actionsBox, photos, timeline].filter(Boolean));
  if (state.openAction) await openForm(state.openAction);
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
}

// ---------------------------------------------------------------- action forms

async function actionForm(action, { tk, estate, members, who, rr }) {
  const tz = estate.timezone;
  const submit = h("button", { type: "submit" }, t("hazard.submit"));
  const close = h("button", { type: "button", class: "close", onclick: () => { state.openAction = null; rr(); } }, t("hazard.close_form"));
  const reasonField = (required) => h("label", {}, required ? t("hazard.reason") : t("hazard.reason_opt"),
    h("textarea", { name: "reason", required: required || null, maxlength: 2000 }));
  let fields;
  let build; // form → { body, file? }
  if (action === "assign") {
    const policy = await api(`/v1/estates/${estate.id}/hazard-policy`).catch(() => ({ general_due_hours: 24, major_due_hours: 168 }));
    // The estate's engineers (GET /v1/estates/{id}/members): the server accepts no one else.
    const engineers = members.filter((u) => u.roles.includes("engineer"));
    const sel = h("select", { name: "assignee", id: "assign-engineer", required: true },
      h("option", { value: "", disabled: true, selected: !tk.assignee }, t("hazard.assign.choose")),
      engineers.map((u) => h("option", { value: u.id, selected: u.id === tk.assignee },
        u.id === tk.assignee ? `${u.name} · ${t("hazard.assign.current")}` : u.name)));
    fields = [
      h("label", {}, t("hazard.assign.engineer"), sel),
      engineers.length ? null : h("p", { class: "error" }, t("hazard.assign.no_engineers")),
      h("label", {}, t("hazard.assign.due", { tz }), h("input", { type: "datetime-local", name: "due", id: "assign-due" })),
      h("p", { class: "hint" }, t("hazard.assign.due_hint", { g: policy.general_due_hours, m: policy.major_due_hours })),
    ];
    build = (f) => {
      if (!f.assignee.value) throw new Error(t("hazard.assign.choose"));
      const body = { action: "assign", assignee: f.assignee.value };
      const due = zonedToIso(f.due.value, tz);
      if (due) body.due_at = due;
      return { body };
    };
  } else if (action === "approve_extension") {
    fields = [
      h("label", {}, t("hazard.ext.due", { tz }), h("input", { type: "datetime-local", name: "due", id: "extension-due", value: isoToZoned(tk.extension?.due_at, tz) })),
      h("p", { class: "hint" }, t("hazard.ext.due_hint")),
    ];
    build = (f) => {
      const body = { action: "approve_extension" };
      const due = zonedToIso(f.due.value, tz);
      if (due && due !== new Date(tk.extension?.due_at || 0).toISOString()) body.due_at = due;
      return { body };
    };
  } else if (action === "deny_extension") {
    fields = [reasonField(false)];
    build = (f) => ({ body: { action: "deny_extension", ...(f.reason.value.trim() ? { reason: f.reason.value.trim() } : {}) } });
  } else if (action === "verify") {
    const photo = h("input", { type: "file", name: "photo", id: "verify-photo", accept: "image/jpeg,image/png,image/webp,image/heic" });
    fields = [
      h("fieldset", { class: "row" }, h("legend", {}, t("hazard.verify.outcome")),
        h("label", {}, h("input", { type: "radio", name: "outcome", value: "pass", id: "verify-pass", checked: true }), t("hazard.verify.pass")),
        h("label", {}, h("input", { type: "radio", name: "outcome", value: "fail", id: "verify-fail" }), t("hazard.verify.fail"))),
      h("label", {}, t("hazard.verify.note"), h("textarea", { name: "comment", id: "verify-comment", maxlength: 2000 })),
      h("label", {}, t("hazard.verify.photo"), photo),
    ];
    build = (f) => {
      const pass = f.querySelector("input[name=outcome]:checked")?.value !== "fail";
      const comment = f.comment.value.trim();
      if (pass) {
        const file = f.photo.files[0];
        if (!file) throw new Error(t("hazard.verify.photo_needed"));
        return { body: { action: "verify_pass", ...(comment ? { note: comment } : {}) }, file };
      }
      if (!comment) throw new Error(t("hazard.verify.reason_needed"));
      return { body: { action: "verify_fail", reason: comment } };
    };
  } else if (action === "cancel" || action === "reopen") {
    fields = [reasonField(true)];
    build = (f) => ({ body: { action, reason: f.reason.value.trim() } });
  } else {
    fields = [h("label", {}, t("hazard.comment"), h("textarea", { name: "text", id: "comment-text", required: true, maxlength: 2000 }))];
    build = (f) => ({ body: { action: "comment", text: f.text.value.trim() } });
  }

  const showError = (node) => {
    form.querySelector("#action-error")?.remove();
    form.prepend(node);
  };
  const form = h("form", { class: "action-form", "data-action": action, onsubmit: async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    document.body.dataset.ready = "0";
    try {
      const { body, file } = build(form);
      let sha = null;
      if (file) {
        sha = await sha256Hex(await file.arrayBuffer());
        state.photoId ??= uuidv7();
        body.photos = [{ id: state.photoId, sha256: sha, role: "verification", bytes: file.size, mime: file.type || "image/jpeg" }];
      }
      body.id = state.eventId;
      await api(`/v1/hazards/${encodeURIComponent(tk.id)}/events`, { method: "POST", body });
      state.flash = t("hazard.saved", { action: actionLabel(body.action) });
      state.openAction = null;
      state.photoId = null;
      if (file) {
        try {
          await putPhoto(sha, file);
        } catch (e) {
          state.pendingUpload = { sha, file, msg: e.message };
        }
      }
      await rr();
    } catch (e) {
      if (e instanceof ApiError) {
        // Refused, so not stored: the next try is a new event.
        showError(problemBox(e));
        state.eventId = uuidv7();
        state.photoId = null;
      } else {
        // A check in the page, or the network: the next try keeps the event id (idempotent).
        showError(h("div", { class: "error", role: "alert", id: "action-error" }, e.message || String(e)));
      }
      submit.disabled = false;
      document.body.dataset.ready = "1";
    }
  } },
  h("strong", {}, actionLabel(action)), fields, h("div", { class: "row" }, submit, close));
  return form;
}

// Unit tests of the console's shared module that need no browser: `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { csvCell, pct, t, registerMessages, addDays, isDate, shortId } from "../../crates/sync-server/console/core.js";

test("CSV cells are quoted and formulas defused, as the server's exports do", () => {
  assert.equal(csvCell("plain"), "plain");
  assert.equal(csvCell('a "b", c'), '"a ""b"", c"');
  assert.equal(csvCell("line\nbreak"), '"line\nbreak"');
  for (const f of ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx"]) {
    assert.ok(csvCell(f).replace(/^"/, "").startsWith("'"), `${f} is defused`);
  }
  assert.equal(csvCell(-1500), "-1500", "numbers stay numbers");
  assert.equal(csvCell(null), "");
  assert.equal(csvCell(undefined), "");
});

test("percentages and messages", () => {
  assert.equal(pct(0.8734), "87.3%");
  assert.equal(pct(null), "—");
  registerMessages({ zh: { "x.hi": "你好 {name}" }, en: { "x.hi": "Hello {name}" } });
  // No document: the default language is zh.
  globalThis.document = { cookie: "" };
  assert.equal(t("x.hi", { name: "王" }), "你好 王");
  globalThis.document = { cookie: "ps_lang=en" };
  assert.equal(t("x.hi", { name: "Wang" }), "Hello Wang");
  assert.equal(t("x.missing"), "x.missing");
});

test("calendar dates", () => {
  assert.equal(addDays("2026-12-31", 1), "2027-01-01");
  assert.equal(addDays("2026-03-01", -1), "2026-02-28");
  assert.ok(isDate("2026-12-06"));
  assert.ok(!isDate("2026-13-01") && !isDate("06/12/2026") && !isDate(null));
  assert.equal(shortId("0193a1c2-0000-7000-8000-00000000b001"), "…0000b001");
});

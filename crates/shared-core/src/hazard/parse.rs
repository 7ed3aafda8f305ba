//! Reading one hazard event's `data`: shape only, no ticket needed.
//!
//! Every error names the JSON path of the field at fault (`data.plan.goal: required`), so a
//! handset can point at it. Text is kept exactly as sent (nothing is trimmed); a required
//! text that is empty or only whitespace is refused. Unknown extra fields are ignored.

use super::{
    Action, EventBody, Grade, Location, ParsedEvent, RectificationPlan, MAX_SHORT_TEXT, MAX_TEXT,
};
use crate::ids::{FactId, HazardId, UserId};
use crate::validate::Rejection;
use crate::wire::{RejectCode, Timestamp};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Reads a `hazard_event`'s `data` object (which also holds `estate_id`, checked elsewhere).
pub fn parse_event(data: &Value) -> Result<ParsedEvent, Rejection> {
    let o = Obj::new(data, "data")?;

    let hazard_id = HazardId(o.req_uuid("hazard_id")?);
    let action_s = o.req_str_raw("action")?;
    let action: Action = action_s.parse().map_err(|_| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        o.invalid(
            "action",
            format!(
                "unknown action {action_s:?}; known actions are {}",
                known.join(", ")
            ),
        )
    })?;

    let body = match action {
        Action::Report => EventBody::Report {
            grade: o.req_grade("grade")?,
            category: o.req_text("category", MAX_SHORT_TEXT)?,
            title: o.req_text("title", MAX_SHORT_TEXT)?,
            description: o.opt_text("description", MAX_TEXT)?,
            location: o.opt_location("location")?.unwrap_or_default(),
            source_fact_id: o.opt_uuid("source_fact_id")?.map(FactId),
            plan: o.opt_plan("plan")?,
        },
        Action::Edit => {
            let grade = match o.get("grade") {
                None => None,
                Some(_) => Some(o.req_grade("grade")?),
            };
            let category = match o.get("category") {
                None => None,
                Some(_) => Some(o.req_text("category", MAX_SHORT_TEXT)?),
            };
            let title = match o.get("title") {
                None => None,
                Some(_) => Some(o.req_text("title", MAX_SHORT_TEXT)?),
            };
            let description = o.opt_text("description", MAX_TEXT)?;
            let location = o.opt_location("location")?;
            if grade.is_none()
                && category.is_none()
                && title.is_none()
                && description.is_none()
                && location.is_none()
            {
                return Err(Rejection::new(
                    RejectCode::InvalidValue,
                    "data: an edit must change at least one of grade, category, title, \
                     description, location",
                ));
            }
            EventBody::Edit {
                grade,
                category,
                title,
                description,
                location,
            }
        }
        Action::Assign => EventBody::Assign {
            assignee: UserId(o.req_uuid("assignee")?),
            due_at: o.opt_ts("due_at")?,
        },
        Action::Start => EventBody::Start,
        Action::Plan => {
            let p = Obj::new(o.req("plan")?, &o.path_of("plan"))?;
            EventBody::Plan(p.plan()?)
        }
        Action::RequestExtension => EventBody::RequestExtension {
            due_at: o.req_ts("due_at")?,
            reason: o.req_text("reason", MAX_TEXT)?,
        },
        Action::ApproveExtension => EventBody::ApproveExtension {
            due_at: o.opt_ts("due_at")?,
        },
        Action::DenyExtension => EventBody::DenyExtension {
            reason: o.opt_text("reason", MAX_TEXT)?,
        },
        Action::SubmitFix => EventBody::SubmitFix {
            note: o.opt_text("note", MAX_TEXT)?,
        },
        Action::VerifyPass => EventBody::VerifyPass {
            note: o.opt_text("note", MAX_TEXT)?,
        },
        Action::VerifyFail => EventBody::VerifyFail {
            reason: o.req_text("reason", MAX_TEXT)?,
        },
        Action::Cancel => EventBody::Cancel {
            reason: o.req_text("reason", MAX_TEXT)?,
        },
        Action::Reopen => EventBody::Reopen {
            reason: o.req_text("reason", MAX_TEXT)?,
        },
        Action::Comment => EventBody::Comment {
            text: o.req_text("text", MAX_TEXT)?,
        },
    };

    Ok(ParsedEvent { hazard_id, body })
}

/// A JSON object being read, with its path for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str) -> Result<Self, Rejection> {
        match v.as_object() {
            Some(map) => Ok(Obj {
                map,
                path: path.to_owned(),
            }),
            None => Err(Rejection::new(
                RejectCode::WrongType,
                format!("{path}: must be an object"),
            )),
        }
    }

    fn path_of(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn err(&self, code: RejectCode, name: &str, what: impl AsRef<str>) -> Rejection {
        Rejection::new(code, format!("{}: {}", self.path_of(name), what.as_ref()))
    }

    fn invalid(&self, name: &str, what: impl AsRef<str>) -> Rejection {
        self.err(RejectCode::InvalidValue, name, what)
    }

    /// The field, or `None` when absent or null.
    fn get(&self, name: &str) -> Option<&'a Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn req(&self, name: &str) -> Result<&'a Value, Rejection> {
        self.get(name)
            .ok_or_else(|| self.err(RejectCode::MissingField, name, "required"))
    }

    fn as_str(&self, name: &str, v: &'a Value) -> Result<&'a str, Rejection> {
        v.as_str()
            .ok_or_else(|| self.err(RejectCode::WrongType, name, "must be a string"))
    }

    /// A required string, with no check on its content.
    fn req_str_raw(&self, name: &str) -> Result<&'a str, Rejection> {
        self.as_str(name, self.req(name)?)
    }

    fn check_len(&self, name: &str, s: &str, max: usize) -> Result<(), Rejection> {
        if s.chars().count() > max {
            return Err(self.invalid(name, format!("must be at most {max} characters")));
        }
        Ok(())
    }

    /// A required text: not empty, not only whitespace, at most `max` characters.
    fn req_text(&self, name: &str, max: usize) -> Result<String, Rejection> {
        let s = self.req_str_raw(name)?;
        if s.trim().is_empty() {
            return Err(self.invalid(name, "must not be empty"));
        }
        self.check_len(name, s, max)?;
        Ok(s.to_owned())
    }

    /// An optional text, kept as sent (it may be empty), at most `max` characters.
    fn opt_text(&self, name: &str, max: usize) -> Result<Option<String>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let s = self.as_str(name, v)?;
                self.check_len(name, s, max)?;
                Ok(Some(s.to_owned()))
            }
        }
    }

    fn uuid(&self, name: &str, v: &'a Value) -> Result<Uuid, Rejection> {
        let s = self.as_str(name, v)?;
        Uuid::parse_str(s).map_err(|_| self.invalid(name, format!("{s:?} is not a UUID")))
    }

    fn req_uuid(&self, name: &str) -> Result<Uuid, Rejection> {
        self.uuid(name, self.req(name)?)
    }

    fn opt_uuid(&self, name: &str) -> Result<Option<Uuid>, Rejection> {
        self.get(name).map(|v| self.uuid(name, v)).transpose()
    }

    fn ts(&self, name: &str, v: &'a Value) -> Result<Timestamp, Rejection> {
        let s = self.as_str(name, v)?;
        Timestamp::parse(s).ok_or_else(|| {
            self.err(
                RejectCode::InvalidTimestamp,
                name,
                format!("{s:?} is not an RFC 3339 timestamp"),
            )
        })
    }

    fn req_ts(&self, name: &str) -> Result<Timestamp, Rejection> {
        self.ts(name, self.req(name)?)
    }

    fn opt_ts(&self, name: &str) -> Result<Option<Timestamp>, Rejection> {
        self.get(name).map(|v| self.ts(name, v)).transpose()
    }

    fn req_grade(&self, name: &str) -> Result<Grade, Rejection> {
        let s = self.req_str_raw(name)?;
        s.parse()
            .map_err(|_| self.invalid(name, format!("unknown grade {s:?}; one of general, major")))
    }

    fn opt_location(&self, name: &str) -> Result<Option<Location>, Rejection> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let l = Obj::new(v, &self.path_of(name))?;
        Ok(Some(Location {
            zone_id: l.opt_uuid("zone_id")?,
            checkpoint_id: l.opt_uuid("checkpoint_id")?,
            text: l.opt_text("text", MAX_TEXT)?,
        }))
    }

    fn opt_plan(&self, name: &str) -> Result<Option<RectificationPlan>, Rejection> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        Obj::new(v, &self.path_of(name))?.plan().map(Some)
    }

    /// This object read as a rectification plan: all five fields required.
    fn plan(&self) -> Result<RectificationPlan, Rejection> {
        Ok(RectificationPlan {
            goal: self.req_text("goal", MAX_TEXT)?,
            measures: self.req_text("measures", MAX_TEXT)?,
            funds: self.req_text("funds", MAX_SHORT_TEXT)?,
            owner: self.req_text("owner", MAX_SHORT_TEXT)?,
            deadline: self.req_ts("deadline")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HAZARD: &str = "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";
    const ESTATE: &str = "0193a1b2-0000-7000-8000-000000000001";
    const USER: &str = "0193a1b2-0000-7000-8000-0000000000aa";

    fn ev(action: &str, extra: Value) -> Value {
        let mut v = json!({ "hazard_id": HAZARD, "action": action, "estate_id": ESTATE });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn plan_json() -> Value {
        json!({
            "goal": "No water on the ramp",
            "measures": "Re-lay the drain",
            "funds": "¥12,000",
            "owner": "Wang Wei",
            "deadline": "2026-12-01T00:00:00Z"
        })
    }

    fn report_json() -> Value {
        ev(
            "report",
            json!({ "grade": "general", "category": "fire", "title": "Blocked exit" }),
        )
    }

    fn err(v: Value) -> Rejection {
        parse_event(&v).unwrap_err()
    }

    #[track_caller]
    fn assert_err(v: Value, code: RejectCode, prefix: &str) {
        let r = err(v);
        assert_eq!(r.code, code, "{}", r.message);
        assert!(
            r.message.starts_with(prefix),
            "{:?} should start with {prefix:?}",
            r.message
        );
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    fn with(mut v: Value, key: &str, x: Value) -> Value {
        v[key] = x;
        v
    }

    #[test]
    fn a_minimal_report_is_read() {
        let p = parse_event(&report_json()).unwrap();
        assert_eq!(p.hazard_id.to_string(), HAZARD);
        assert_eq!(
            p.body,
            EventBody::Report {
                grade: Grade::General,
                category: "fire".into(),
                title: "Blocked exit".into(),
                description: None,
                location: Location::default(),
                source_fact_id: None,
                plan: None,
            }
        );
    }

    #[test]
    fn a_full_report_is_read_and_text_is_kept_as_sent() {
        let zone = "0193a1b2-0000-7000-8000-0000000000b1";
        let v = ev(
            "report",
            json!({
                "grade": "major",
                "category": " fire ",
                "title": "  Blocked exit\n",
                "description": "",
                "location": { "zone_id": zone, "text": "B2 car park" },
                "source_fact_id": USER,
                "plan": plan_json(),
                "something_new": [1, 2, 3]
            }),
        );
        let p = parse_event(&v).unwrap();
        let EventBody::Report {
            grade,
            category,
            title,
            description,
            location,
            source_fact_id,
            plan,
        } = p.body
        else {
            panic!("not a report");
        };
        assert_eq!(grade, Grade::Major);
        assert_eq!(category, " fire ");
        assert_eq!(title, "  Blocked exit\n");
        assert_eq!(description.as_deref(), Some(""));
        assert_eq!(location.zone_id.unwrap().to_string(), zone);
        assert_eq!(location.checkpoint_id, None);
        assert_eq!(location.text.as_deref(), Some("B2 car park"));
        assert_eq!(source_fact_id.unwrap().to_string(), USER);
        let plan = plan.unwrap();
        assert_eq!(plan.funds, "¥12,000");
        assert_eq!(
            plan.deadline,
            Timestamp::parse("2026-12-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn any_uuid_version_is_a_hazard_id() {
        let v = with(
            report_json(),
            "hazard_id",
            json!("6ba7b810-9dad-41d1-80b4-00c04fd430c8"),
        );
        assert!(parse_event(&v).is_ok());
    }

    #[test]
    fn envelope_errors() {
        assert_err(json!([1]), RejectCode::WrongType, "data: must be an object");
        assert_err(
            without(report_json(), "hazard_id"),
            RejectCode::MissingField,
            "data.hazard_id: required",
        );
        assert_err(
            with(report_json(), "hazard_id", json!("nope")),
            RejectCode::InvalidValue,
            "data.hazard_id:",
        );
        assert_err(
            with(report_json(), "hazard_id", json!(7)),
            RejectCode::WrongType,
            "data.hazard_id: must be a string",
        );
        assert_err(
            without(report_json(), "action"),
            RejectCode::MissingField,
            "data.action: required",
        );
        assert_err(
            with(report_json(), "action", Value::Null),
            RejectCode::MissingField,
            "data.action: required",
        );
        assert_err(
            with(report_json(), "action", json!("teleport")),
            RejectCode::InvalidValue,
            "data.action: unknown action",
        );
        assert_err(
            with(report_json(), "action", json!(["report"])),
            RejectCode::WrongType,
            "data.action: must be a string",
        );
    }

    #[test]
    fn report_field_errors() {
        for f in ["grade", "category", "title"] {
            assert_err(
                without(report_json(), f),
                RejectCode::MissingField,
                &format!("data.{f}: required"),
            );
            assert_err(
                with(report_json(), f, Value::Null),
                RejectCode::MissingField,
                &format!("data.{f}: required"),
            );
            assert_err(
                with(report_json(), f, json!(1)),
                RejectCode::WrongType,
                &format!("data.{f}: must be a string"),
            );
        }
        assert_err(
            with(report_json(), "grade", json!("minor")),
            RejectCode::InvalidValue,
            "data.grade: unknown grade",
        );
        for f in ["category", "title"] {
            assert_err(
                with(report_json(), f, json!("")),
                RejectCode::InvalidValue,
                &format!("data.{f}: must not be empty"),
            );
            assert_err(
                with(report_json(), f, json!(" \t\n")),
                RejectCode::InvalidValue,
                &format!("data.{f}: must not be empty"),
            );
            // Characters, not bytes: 200 CJK characters are fine, 201 are not.
            assert!(
                parse_event(&with(report_json(), f, json!("隐".repeat(MAX_SHORT_TEXT)))).is_ok()
            );
            assert_err(
                with(report_json(), f, json!("隐".repeat(MAX_SHORT_TEXT + 1))),
                RejectCode::InvalidValue,
                &format!("data.{f}: must be at most"),
            );
        }
        assert!(parse_event(&with(
            report_json(),
            "description",
            json!("x".repeat(MAX_TEXT))
        ))
        .is_ok());
        assert_err(
            with(
                report_json(),
                "description",
                json!("x".repeat(MAX_TEXT + 1)),
            ),
            RejectCode::InvalidValue,
            "data.description: must be at most",
        );
        assert_err(
            with(report_json(), "description", json!(false)),
            RejectCode::WrongType,
            "data.description: must be a string",
        );
        assert_err(
            with(report_json(), "location", json!("B2")),
            RejectCode::WrongType,
            "data.location: must be an object",
        );
        assert_err(
            with(report_json(), "location", json!({ "zone_id": "zone-1" })),
            RejectCode::InvalidValue,
            "data.location.zone_id:",
        );
        assert_err(
            with(report_json(), "location", json!({ "checkpoint_id": 5 })),
            RejectCode::WrongType,
            "data.location.checkpoint_id: must be a string",
        );
        assert_err(
            with(
                report_json(),
                "location",
                json!({ "text": "x".repeat(MAX_TEXT + 1) }),
            ),
            RejectCode::InvalidValue,
            "data.location.text: must be at most",
        );
        assert_err(
            with(report_json(), "source_fact_id", json!("abc")),
            RejectCode::InvalidValue,
            "data.source_fact_id:",
        );
        assert_err(
            with(report_json(), "plan", json!("later")),
            RejectCode::WrongType,
            "data.plan: must be an object",
        );
        let mut p = plan_json();
        p["owner"] = json!("");
        assert_err(
            with(report_json(), "plan", p),
            RejectCode::InvalidValue,
            "data.plan.owner: must not be empty",
        );
    }

    #[test]
    fn plan_field_errors() {
        let good = ev("plan", json!({ "plan": plan_json() }));
        let p = parse_event(&good).unwrap();
        assert!(matches!(p.body, EventBody::Plan(ref x) if x.goal == "No water on the ramp"));

        assert_err(
            ev("plan", json!({})),
            RejectCode::MissingField,
            "data.plan: required",
        );
        // The fields at the top level are not a plan.
        assert_err(
            ev("plan", plan_json()),
            RejectCode::MissingField,
            "data.plan: required",
        );
        for f in ["goal", "measures", "funds", "owner", "deadline"] {
            let mut p = plan_json();
            p.as_object_mut().unwrap().remove(f);
            assert_err(
                ev("plan", json!({ "plan": p })),
                RejectCode::MissingField,
                &format!("data.plan.{f}: required"),
            );
            let mut p = plan_json();
            p[f] = json!(12);
            assert_err(
                ev("plan", json!({ "plan": p })),
                RejectCode::WrongType,
                &format!("data.plan.{f}: must be a string"),
            );
        }
        for f in ["goal", "measures", "funds", "owner"] {
            let mut p = plan_json();
            p[f] = json!("   ");
            assert_err(
                ev("plan", json!({ "plan": p })),
                RejectCode::InvalidValue,
                &format!("data.plan.{f}: must not be empty"),
            );
        }
        for (f, max) in [
            ("goal", MAX_TEXT),
            ("measures", MAX_TEXT),
            ("funds", MAX_SHORT_TEXT),
            ("owner", MAX_SHORT_TEXT),
        ] {
            let mut p = plan_json();
            p[f] = json!("y".repeat(max));
            assert!(parse_event(&ev("plan", json!({ "plan": p.clone() }))).is_ok());
            p[f] = json!("y".repeat(max + 1));
            assert_err(
                ev("plan", json!({ "plan": p })),
                RejectCode::InvalidValue,
                &format!("data.plan.{f}: must be at most"),
            );
        }
        let mut p = plan_json();
        p["deadline"] = json!("next week");
        assert_err(
            ev("plan", json!({ "plan": p })),
            RejectCode::InvalidTimestamp,
            "data.plan.deadline:",
        );
    }

    #[test]
    fn edit_needs_at_least_one_field() {
        assert_err(ev("edit", json!({})), RejectCode::InvalidValue, "data:");
        // Null is absent.
        assert_err(
            ev("edit", json!({ "title": null })),
            RejectCode::InvalidValue,
            "data:",
        );
        let p = parse_event(&ev("edit", json!({ "title": "New" }))).unwrap();
        assert_eq!(
            p.body,
            EventBody::Edit {
                grade: None,
                category: None,
                title: Some("New".into()),
                description: None,
                location: None,
            }
        );
        let p = parse_event(&ev(
            "edit",
            json!({ "grade": "major", "location": { "text": "Gate 3" } }),
        ))
        .unwrap();
        assert_eq!(
            p.body,
            EventBody::Edit {
                grade: Some(Grade::Major),
                category: None,
                title: None,
                description: None,
                location: Some(Location {
                    text: Some("Gate 3".into()),
                    ..Location::default()
                }),
            }
        );
        assert_err(
            ev("edit", json!({ "title": "" })),
            RejectCode::InvalidValue,
            "data.title: must not be empty",
        );
        assert_err(
            ev("edit", json!({ "grade": "huge" })),
            RejectCode::InvalidValue,
            "data.grade:",
        );
        assert_err(
            ev("edit", json!({ "category": 3 })),
            RejectCode::WrongType,
            "data.category: must be a string",
        );
    }

    #[test]
    fn assign_and_extension_fields() {
        let p = parse_event(&ev("assign", json!({ "assignee": USER }))).unwrap();
        assert_eq!(
            p.body,
            EventBody::Assign {
                assignee: USER.parse().unwrap(),
                due_at: None
            }
        );
        let p = parse_event(&ev(
            "assign",
            json!({ "assignee": USER, "due_at": "2026-11-23T08:00:00+08:00" }),
        ))
        .unwrap();
        assert_eq!(
            p.body,
            EventBody::Assign {
                assignee: USER.parse().unwrap(),
                due_at: Timestamp::parse("2026-11-23T00:00:00Z"),
            }
        );
        assert_err(
            ev("assign", json!({})),
            RejectCode::MissingField,
            "data.assignee: required",
        );
        assert_err(
            ev("assign", json!({ "assignee": "bob" })),
            RejectCode::InvalidValue,
            "data.assignee:",
        );
        assert_err(
            ev("assign", json!({ "assignee": USER, "due_at": "tomorrow" })),
            RejectCode::InvalidTimestamp,
            "data.due_at:",
        );
        assert_err(
            ev(
                "assign",
                json!({ "assignee": USER, "due_at": 1_700_000_000_000_i64 }),
            ),
            RejectCode::WrongType,
            "data.due_at: must be a string",
        );

        assert_err(
            ev("request_extension", json!({ "reason": "parts" })),
            RejectCode::MissingField,
            "data.due_at: required",
        );
        assert_err(
            ev(
                "request_extension",
                json!({ "due_at": "2026-11-30T00:00:00Z" }),
            ),
            RejectCode::MissingField,
            "data.reason: required",
        );
        assert_err(
            ev(
                "request_extension",
                json!({ "due_at": "2026-11-30T00:00:00Z", "reason": " " }),
            ),
            RejectCode::InvalidValue,
            "data.reason: must not be empty",
        );
        assert_eq!(
            parse_event(&ev(
                "request_extension",
                json!({ "due_at": "2026-11-30T00:00:00Z", "reason": "parts" })
            ))
            .unwrap()
            .body,
            EventBody::RequestExtension {
                due_at: Timestamp::parse("2026-11-30T00:00:00Z").unwrap(),
                reason: "parts".into()
            }
        );
        assert_eq!(
            parse_event(&ev("approve_extension", json!({})))
                .unwrap()
                .body,
            EventBody::ApproveExtension { due_at: None }
        );
        assert_err(
            ev("approve_extension", json!({ "due_at": "soon" })),
            RejectCode::InvalidTimestamp,
            "data.due_at:",
        );
        assert_eq!(
            parse_event(&ev("deny_extension", json!({}))).unwrap().body,
            EventBody::DenyExtension { reason: None }
        );
        assert_eq!(
            parse_event(&ev("deny_extension", json!({ "reason": "no" })))
                .unwrap()
                .body,
            EventBody::DenyExtension {
                reason: Some("no".into())
            }
        );
    }

    #[test]
    fn the_simple_actions() {
        assert_eq!(
            parse_event(&ev("start", json!({}))).unwrap().body,
            EventBody::Start
        );
        assert_eq!(
            parse_event(&ev("submit_fix", json!({}))).unwrap().body,
            EventBody::SubmitFix { note: None }
        );
        assert_eq!(
            parse_event(&ev("verify_pass", json!({ "note": "ok" })))
                .unwrap()
                .body,
            EventBody::VerifyPass {
                note: Some("ok".into())
            }
        );
        assert_err(
            ev("submit_fix", json!({ "note": "x".repeat(MAX_TEXT + 1) })),
            RejectCode::InvalidValue,
            "data.note: must be at most",
        );
        for a in ["verify_fail", "cancel", "reopen"] {
            assert_err(
                ev(a, json!({})),
                RejectCode::MissingField,
                "data.reason: required",
            );
            assert_err(
                ev(a, json!({ "reason": "" })),
                RejectCode::InvalidValue,
                "data.reason: must not be empty",
            );
            let body = parse_event(&ev(a, json!({ "reason": "because" })))
                .unwrap()
                .body;
            assert_eq!(body.action().as_str(), a);
        }
        assert_err(
            ev("comment", json!({})),
            RejectCode::MissingField,
            "data.text: required",
        );
        assert_err(
            ev("comment", json!({ "text": "\n" })),
            RejectCode::InvalidValue,
            "data.text: must not be empty",
        );
        assert_eq!(
            parse_event(&ev("comment", json!({ "text": "on my way" })))
                .unwrap()
                .body,
            EventBody::Comment {
                text: "on my way".into()
            }
        );
    }

    #[test]
    fn every_action_name_parses_to_its_action() {
        let extras = json!({
            "grade": "general", "category": "c", "title": "t", "assignee": USER,
            "plan": plan_json(), "due_at": "2026-11-30T00:00:00Z", "reason": "r", "text": "t"
        });
        for a in Action::ALL {
            let p = parse_event(&ev(a.as_str(), extras.clone())).unwrap();
            assert_eq!(p.body.action(), a);
        }
    }
}

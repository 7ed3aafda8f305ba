//! The shape of `scan` and `run_event` facts.
//!
//! Every error names the JSON path of the field at fault (`data.location.lat: …`). Unknown
//! extra fields are ignored; a null field is the same as an absent one.

use super::*;
use crate::validate::Rejection;
use crate::wire::RejectCode;
use serde_json::{Map, Value};

/// Longest abort reason of a run, in characters.
pub const MAX_REASON: usize = MAX_NAME * 10;

/// Reads a scan's `data`: `tag` (string, 1..=512 chars), `method` (`nfc` | `qr`),
/// optional `run_id` (UUID), optional `location` `{lat, lng, accuracy_m?, mock?}`.
pub fn parse_scan(data: &Value) -> Result<ScanData, Rejection> {
    let o = Obj::new(data, "data")?;

    let tag_raw = o.req_str("tag")?;
    let trimmed = tag_raw.trim();
    if trimmed.is_empty() {
        return Err(o.invalid("tag", "must not be empty"));
    }
    let n = trimmed.chars().count();
    if n > MAX_TAG {
        return Err(o.invalid(
            "tag",
            format!("is {n} characters long; at most {MAX_TAG} are allowed"),
        ));
    }

    let method_s = o.req_str("method")?;
    let (method, kind) = match method_s {
        "nfc" => (ScanMethod::Nfc, TagKind::Nfc),
        "qr" => (ScanMethod::Qr, TagKind::Qr),
        _ => {
            return Err(o.invalid(
                "method",
                format!("unknown method {:?}; one of nfc, qr", short(method_s)),
            ))
        }
    };

    let run_id = o.opt_uuid("run_id")?.map(RunId);

    let location = match o.get("location") {
        None => None,
        Some(v) => {
            let l = Obj::new(v, &o.path_of("location"))?;
            let lat = l.req_num("lat")?;
            if !(-90.0..=90.0).contains(&lat) {
                return Err(l.invalid("lat", format!("{lat} is not from -90 to 90")));
            }
            let lng = l.req_num("lng")?;
            if !(-180.0..=180.0).contains(&lng) {
                return Err(l.invalid("lng", format!("{lng} is not from -180 to 180")));
            }
            let accuracy_m = match l.get("accuracy_m") {
                None => None,
                Some(v) => {
                    let a = l.num("accuracy_m", v)?;
                    if a < 0.0 {
                        return Err(l.invalid("accuracy_m", format!("{a} is negative")));
                    }
                    Some(a)
                }
            };
            let mock = match l.get("mock") {
                None => false,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| l.err(RejectCode::WrongType, "mock", "must be true or false"))?,
            };
            Some(ScanLocation {
                lat,
                lng,
                accuracy_m,
                mock,
            })
        }
    };

    let tag = Tag {
        kind,
        value: reference::normalise_tag(kind, tag_raw),
    };
    Ok(ScanData {
        method,
        tag_raw: tag_raw.to_owned(),
        tag_key: tag.key(),
        run_id,
        location,
    })
}

/// Reads a run event's `data`: `run_id`, `action` (`start` | `finish` | `abort`),
/// `route_id` (required on start), `reason` (required on abort).
pub fn parse_run_event(data: &Value) -> Result<RunEventData, Rejection> {
    let o = Obj::new(data, "data")?;
    let run_id = RunId(o.req_uuid("run_id")?);
    let action_s = o.req_str("action")?;
    let action: RunAction = action_s.parse().map_err(|_| {
        o.invalid(
            "action",
            format!(
                "unknown action {:?}; one of start, finish, abort",
                short(action_s)
            ),
        )
    })?;
    let route_id = match action {
        RunAction::Start => Some(o.req_uuid("route_id")?),
        _ => o.opt_uuid("route_id")?,
    }
    .map(RouteId);
    let reason = match o.get("reason") {
        None if action == RunAction::Abort => {
            return Err(o.err(RejectCode::MissingField, "reason", "required"))
        }
        None => None,
        Some(v) => {
            let s = o.as_str("reason", v)?;
            if action == RunAction::Abort && s.trim().is_empty() {
                return Err(o.invalid("reason", "must not be empty"));
            }
            let n = s.chars().count();
            if n > MAX_REASON {
                return Err(o.invalid(
                    "reason",
                    format!("is {n} characters long; at most {MAX_REASON} are allowed"),
                ));
            }
            Some(s.to_owned())
        }
    };
    Ok(RunEventData {
        run_id,
        action,
        route_id,
        reason,
    })
}

/// A value as quoted in a message: at most 40 characters.
fn short(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(39).collect();
        t.push('…');
        t
    }
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

    fn req_str(&self, name: &str) -> Result<&'a str, Rejection> {
        self.as_str(name, self.req(name)?)
    }

    fn num(&self, name: &str, v: &'a Value) -> Result<f64, Rejection> {
        v.as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(RejectCode::WrongType, name, "must be a number"))
    }

    fn req_num(&self, name: &str) -> Result<f64, Rejection> {
        self.num(name, self.req(name)?)
    }

    fn uuid(&self, name: &str, v: &'a Value) -> Result<uuid::Uuid, Rejection> {
        let s = self.as_str(name, v)?;
        uuid::Uuid::parse_str(s)
            .map_err(|_| self.invalid(name, format!("{:?} is not a UUID", short(s))))
    }

    fn req_uuid(&self, name: &str) -> Result<uuid::Uuid, Rejection> {
        self.uuid(name, self.req(name)?)
    }

    fn opt_uuid(&self, name: &str) -> Result<Option<uuid::Uuid>, Rejection> {
        self.get(name).map(|v| self.uuid(name, v)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: &str = "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b";

    fn scan(extra: Value) -> Value {
        let mut v = json!({"estate_id": "0193a1b2-0000-7000-8000-000000000001",
                           "tag": "04:a2:19:7c", "method": "nfc"});
        for (k, x) in extra.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        v
    }

    fn scan_err(extra: Value) -> Rejection {
        parse_scan(&scan(extra)).unwrap_err()
    }

    #[test]
    fn a_scan_is_read_and_its_tag_normalised() {
        let s = parse_scan(&scan(json!({"run_id": RUN, "extra": [1, 2]}))).unwrap();
        assert_eq!(s.method, ScanMethod::Nfc);
        assert_eq!(s.tag_raw, "04:a2:19:7c");
        assert_eq!(s.tag_key, "nfc:04A2197C");
        assert_eq!(s.run_id.unwrap().to_string(), RUN);
        assert_eq!(s.location, None);

        let q = parse_scan(&scan(
            json!({"method": "qr", "tag": "  https://x.example/cp/7 "}),
        ))
        .unwrap();
        assert_eq!(q.tag_key, "qr:https://x.example/cp/7");
        assert_eq!(q.tag_raw, "  https://x.example/cp/7 ");
    }

    #[test]
    fn a_scan_location_is_read_with_defaults() {
        let s = parse_scan(&scan(json!({"location": {"lat": 31.2, "lng": 121.5}}))).unwrap();
        assert_eq!(
            s.location,
            Some(ScanLocation {
                lat: 31.2,
                lng: 121.5,
                accuracy_m: None,
                mock: false
            })
        );
        let s = parse_scan(&scan(json!({"location":
            {"lat": -90, "lng": 180, "accuracy_m": 0, "mock": true}})))
        .unwrap();
        let l = s.location.unwrap();
        assert_eq!(
            (l.lat, l.lng, l.accuracy_m, l.mock),
            (-90.0, 180.0, Some(0.0), true)
        );
    }

    #[test]
    fn each_bad_scan_field_has_its_code_and_path() {
        let cases = [
            (
                json!({"tag": null}),
                RejectCode::MissingField,
                "data.tag: required",
            ),
            (
                json!({"tag": 7}),
                RejectCode::WrongType,
                "data.tag: must be a string",
            ),
            (
                json!({"tag": "   "}),
                RejectCode::InvalidValue,
                "data.tag: must not be empty",
            ),
            (
                json!({"tag": "A".repeat(513)}),
                RejectCode::InvalidValue,
                "data.tag: is 513",
            ),
            (
                json!({"method": null}),
                RejectCode::MissingField,
                "data.method: required",
            ),
            (
                json!({"method": true}),
                RejectCode::WrongType,
                "data.method: must be a string",
            ),
            (
                json!({"method": "ble"}),
                RejectCode::InvalidValue,
                "data.method: unknown method \"ble\"; one of nfc, qr",
            ),
            (
                json!({"run_id": "run-7"}),
                RejectCode::InvalidValue,
                "data.run_id: \"run-7\" is not a UUID",
            ),
            (
                json!({"run_id": 7}),
                RejectCode::WrongType,
                "data.run_id: must be a string",
            ),
            (
                json!({"location": "here"}),
                RejectCode::WrongType,
                "data.location: must be an object",
            ),
            (
                json!({"location": {"lng": 1}}),
                RejectCode::MissingField,
                "data.location.lat: required",
            ),
            (
                json!({"location": {"lat": 1}}),
                RejectCode::MissingField,
                "data.location.lng: required",
            ),
            (
                json!({"location": {"lat": "1", "lng": 1}}),
                RejectCode::WrongType,
                "data.location.lat: must be a number",
            ),
            (
                json!({"location": {"lat": 90.5, "lng": 1}}),
                RejectCode::InvalidValue,
                "data.location.lat: 90.5 is not",
            ),
            (
                json!({"location": {"lat": 1, "lng": -180.1}}),
                RejectCode::InvalidValue,
                "data.location.lng: -180.1 is not",
            ),
            (
                json!({"location": {"lat": 1, "lng": 1, "accuracy_m": -2}}),
                RejectCode::InvalidValue,
                "data.location.accuracy_m: -2 is negative",
            ),
            (
                json!({"location": {"lat": 1, "lng": 1, "accuracy_m": "5"}}),
                RejectCode::WrongType,
                "data.location.accuracy_m: must be a number",
            ),
            (
                json!({"location": {"lat": 1, "lng": 1, "mock": "yes"}}),
                RejectCode::WrongType,
                "data.location.mock: must be true or false",
            ),
        ];
        for (extra, code, msg) in cases {
            let r = scan_err(extra.clone());
            assert_eq!(r.code, code, "{extra}: {r:?}");
            assert!(r.message.starts_with(msg), "{extra}: {}", r.message);
        }
        assert_eq!(
            parse_scan(&json!([1])).unwrap_err().message,
            "data: must be an object"
        );
        // 512 characters (multi-byte ones count once) is still fine.
        assert!(parse_scan(&scan(json!({"method": "qr", "tag": "码".repeat(512)}))).is_ok());
    }

    fn run(action: &str, extra: Value) -> Result<RunEventData, Rejection> {
        let mut v = json!({"run_id": RUN, "action": action});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        parse_run_event(&v)
    }

    #[test]
    fn run_events_are_read() {
        let route = "0193a1b2-0000-7000-8000-0000000000a1";
        let s = run("start", json!({"route_id": route})).unwrap();
        assert_eq!(s.action, RunAction::Start);
        assert_eq!(s.route_id.unwrap().to_string(), route);
        assert_eq!(s.run_id.to_string(), RUN);
        let f = run("finish", json!({})).unwrap();
        assert_eq!(
            (f.action, f.route_id, f.reason),
            (RunAction::Finish, None, None)
        );
        let a = run("abort", json!({"reason": "called to a fire alarm"})).unwrap();
        assert_eq!(a.reason.as_deref(), Some("called to a fire alarm"));
    }

    #[test]
    fn each_bad_run_event_field_has_its_code_and_path() {
        let cases = [
            (
                run("finish", json!({"run_id": null})),
                RejectCode::MissingField,
                "data.run_id: required",
            ),
            (
                run("finish", json!({"run_id": "r1"})),
                RejectCode::InvalidValue,
                "data.run_id: \"r1\" is not a UUID",
            ),
            (
                run("finish", json!({"action": 3})),
                RejectCode::WrongType,
                "data.action: must be a string",
            ),
            (
                run("pause", json!({})),
                RejectCode::InvalidValue,
                "data.action: unknown action \"pause\"; one of start, finish, abort",
            ),
            (
                run("start", json!({})),
                RejectCode::MissingField,
                "data.route_id: required",
            ),
            (
                run("start", json!({"route_id": "r"})),
                RejectCode::InvalidValue,
                "data.route_id: \"r\" is not a UUID",
            ),
            (
                run("finish", json!({"route_id": "r"})),
                RejectCode::InvalidValue,
                "data.route_id: \"r\" is not a UUID",
            ),
            (
                run("abort", json!({})),
                RejectCode::MissingField,
                "data.reason: required",
            ),
            (
                run("abort", json!({"reason": " "})),
                RejectCode::InvalidValue,
                "data.reason: must not be empty",
            ),
            (
                run("abort", json!({"reason": 5})),
                RejectCode::WrongType,
                "data.reason: must be a string",
            ),
            (
                run("abort", json!({"reason": "x".repeat(MAX_REASON + 1)})),
                RejectCode::InvalidValue,
                "data.reason: is 2001",
            ),
        ];
        for (i, (r, code, msg)) in cases.into_iter().enumerate() {
            let r = r.unwrap_err();
            assert_eq!(r.code, code, "case {i}: {r:?}");
            assert!(r.message.starts_with(msg), "case {i}: {}", r.message);
        }
        assert!(run("abort", json!({"reason": "x".repeat(MAX_REASON)})).is_ok());
        assert_eq!(
            parse_run_event(&json!("start")).unwrap_err().code,
            RejectCode::WrongType
        );
    }
}

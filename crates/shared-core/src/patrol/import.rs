//! Checkpoint and route CSV files, read into reference operations. Nothing is written here:
//! the caller applies the operations in one transaction, or shows them (dry run).
//!
//! `checkpoints.csv` — header required, columns in any order, names case-insensitive:
//! `code` (required), `name` (required), `class` (`key`|`general`, required), `zone`
//! (a zone code of this estate, created when new; or a zone id, which must be of this
//! estate), `lat`, `lng` (both or neither), `radius_m`, `floor`, `instructions`, `nfc`, `qr`
//! (several tags separated by `;`). A row whose code exists replaces that checkpoint (its id
//! kept); a new code makes a new checkpoint.
//!
//! Columns a file leaves out keep what an existing checkpoint had (a file of `code,name,class`
//! renames without dropping tags or GPS points); a column that is there but empty in a row
//! clears it (`radius_m` back to the default). `nfc` and `qr` replace the tags of their kind.
//!
//! `routes.csv` — one row per route stop: `route` (route code, required), `name` (route
//! name; first row of the route wins), `strict` (`true`|`false`, default `true`),
//! `expected_minutes` (default 60), `position` (1-based; rows sorted by it, default file
//! order), `checkpoint` (a checkpoint code, required). A route whose code exists is
//! replaced; `name`, `strict` and `expected_minutes` given on no row of it keep what it had
//! (a new route without a name is named by its code). `strict` reads `true|false|yes|no|1|0`;
//! `strict` and `expected_minutes` also take the first row of the route that gives them. If
//! any row of a route has a `position`, all must, and no two the same.
//!
//! Both: a UTF-8 byte order mark is skipped, CRLF or LF, quoted fields may span lines (line
//! numbers are those of the file, the header being line 1), cells are trimmed, and rows whose
//! cells are all empty are skipped. Rows with more or fewer cells than the header are errors.

use super::*;
use std::collections::HashMap;

/// What an import would do.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportPlan {
    pub ops: Vec<RefOp>,
    /// Rows read (without the header).
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    /// Zones the file names that do not exist yet (created by `ops`).
    pub new_zones: Vec<String>,
}

/// Reads a checkpoints CSV against the estate's current data. `new_id` mints ids for new
/// entities (so tests are deterministic). `progress` is called with the number of rows read
/// so far. Every bad row is reported, each with its line number (`RefError::at`), and the
/// plan is checked as a whole with [`reference::apply`] (duplicate tags across rows and with
/// existing checkpoints included).
pub fn plan_checkpoints(
    csv: &str,
    current: &ReferenceSet,
    new_id: &mut dyn FnMut() -> uuid::Uuid,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportPlan, Vec<RefError>> {
    let mut errors = Vec::new();
    let Some(sheet) = Sheet::read(
        csv,
        CHECKPOINT_COLUMNS,
        &["code", "name", "class"],
        progress,
        &mut errors,
    ) else {
        return Err(errors);
    };

    let by_code: HashMap<&str, &Checkpoint> = current
        .checkpoints
        .iter()
        .map(|c| (c.code.as_str(), c))
        .collect();
    let zone_by_code: HashMap<&str, ZoneId> = current
        .zones
        .iter()
        .map(|z| (z.code.as_str(), z.id))
        .collect();

    let mut plan = ImportPlan {
        ops: Vec::new(),
        rows: sheet.rows_read,
        created: 0,
        updated: 0,
        new_zones: Vec::new(),
    };
    // The CSV line of each op.
    let mut op_lines: Vec<usize> = Vec::new();
    let mut new_zone_ids: HashMap<String, ZoneId> = HashMap::new();
    let mut code_lines: HashMap<String, usize> = HashMap::new();
    let mut tag_lines: HashMap<String, (usize, String)> = HashMap::new();

    for row in &sheet.rows {
        let line = row.line;
        let mut errs: Vec<RefError> = Vec::new();
        let mut bad = |code: &str, field: &str, msg: String| {
            errs.push(RefError::new(line, code, field, msg));
        };
        let cell = |name: &str| sheet.cell(row, name);

        let code = cell("code").unwrap_or("");
        if code.is_empty() {
            bad("missing_field", "code", "code is required".into());
        } else if let Some(first) = code_lines.get(code) {
            bad(
                "duplicate_code",
                "code",
                format!("code {:?} is already on line {first}", short(code)),
            );
        } else {
            code_lines.insert(code.to_owned(), line);
        }
        let name = cell("name").unwrap_or("");
        if name.is_empty() {
            bad("missing_field", "name", "name is required".into());
        }
        let class_s = cell("class").unwrap_or("");
        let class = if class_s.is_empty() {
            bad("missing_field", "class", "class is required".into());
            None
        } else {
            let c = class_s.to_lowercase().parse::<CheckpointClass>().ok();
            if c.is_none() {
                bad(
                    "invalid_value",
                    "class",
                    format!("class {:?} is not key or general", short(class_s)),
                );
            }
            c
        };

        let existing = by_code.get(code).copied();

        // Zone: an id of this estate, or a code (a new one is created once).
        let zone_id = match cell("zone") {
            None => existing.and_then(|c| c.zone_id),
            Some("") => None,
            Some(z) => {
                if let Ok(u) = uuid::Uuid::parse_str(z) {
                    if current.zones.iter().any(|x| x.id.0 == u) {
                        Some(ZoneId(u))
                    } else {
                        bad(
                            "unknown_zone",
                            "zone",
                            format!("zone {u} is not a zone of this estate"),
                        );
                        None
                    }
                } else if let Some(id) = zone_by_code.get(z) {
                    Some(*id)
                } else if let Some(id) = new_zone_ids.get(z) {
                    Some(*id)
                } else {
                    let id = ZoneId(new_id());
                    new_zone_ids.insert(z.to_owned(), id);
                    plan.new_zones.push(z.to_owned());
                    plan.ops.push(RefOp::Put(RefEntity::Zone(Zone {
                        id,
                        estate_id: current.estate_id,
                        code: z.to_owned(),
                        name: z.to_owned(),
                    })));
                    op_lines.push(line);
                    Some(id)
                }
            }
        };

        // Location: both or neither.
        let mut number = |col: &str| -> Option<Option<f64>> {
            let s = cell(col)?;
            if s.is_empty() {
                return Some(None);
            }
            match s.parse::<f64>() {
                Ok(x) => Some(Some(x)),
                Err(_) => {
                    bad(
                        "invalid_value",
                        col,
                        format!("{col} {:?} is not a number", short(s)),
                    );
                    Some(None)
                }
            }
        };
        let lat = number("lat");
        let lng = number("lng");
        let radius = number("radius_m");
        let location = match (lat, lng) {
            (None, None) => existing.and_then(|c| c.location),
            (lat, lng) => {
                let lat_text = cell("lat").unwrap_or("");
                let lng_text = cell("lng").unwrap_or("");
                match (lat.flatten(), lng.flatten()) {
                    (Some(lat), Some(lng)) => Some(GeoPoint { lat, lng }),
                    _ => {
                        if !lat_text.is_empty() && lng_text.is_empty() {
                            bad(
                                "missing_field",
                                "lng",
                                "lng is required when lat is given".into(),
                            );
                        } else if lat_text.is_empty() && !lng_text.is_empty() {
                            bad(
                                "missing_field",
                                "lat",
                                "lat is required when lng is given".into(),
                            );
                        }
                        None
                    }
                }
            }
        };
        let radius_m = match radius {
            None => existing.map_or(DEFAULT_RADIUS_M, |c| c.radius_m),
            Some(r) => r.unwrap_or(DEFAULT_RADIUS_M),
        };
        let text = |col: &str, old: Option<&String>| -> Option<String> {
            match cell(col) {
                None => old.cloned(),
                Some("") => None,
                Some(s) => Some(s.to_owned()),
            }
        };
        let floor = text("floor", existing.and_then(|c| c.floor.as_ref()));
        let instructions = text(
            "instructions",
            existing.and_then(|c| c.instructions.as_ref()),
        );

        // Tags: each kind's column replaces the tags of that kind.
        let mut tags: Vec<Tag> = Vec::new();
        for kind in [TagKind::Nfc, TagKind::Qr] {
            let col = kind.as_str();
            match cell(col) {
                None => tags.extend(
                    existing
                        .iter()
                        .flat_map(|c| c.tags.iter())
                        .filter(|t| t.kind == kind)
                        .cloned(),
                ),
                Some(s) => {
                    for raw in s.split(';').map(str::trim).filter(|t| !t.is_empty()) {
                        let tag = Tag {
                            kind,
                            value: reference::normalise_tag(kind, raw),
                        };
                        let key = tag.key();
                        match tag_lines.get(&key) {
                            Some((l, _)) if *l == line => bad(
                                "duplicate_tag",
                                col,
                                format!("tag {:?} is twice in this row", short(&key)),
                            ),
                            Some((l, other)) => bad(
                                "duplicate_tag",
                                col,
                                format!(
                                    "tag {:?} is already on line {l} (checkpoint {:?})",
                                    short(&key),
                                    short(other)
                                ),
                            ),
                            None => {
                                tag_lines.insert(key, (line, code.to_owned()));
                            }
                        }
                        tags.push(tag);
                    }
                }
            }
        }

        if !errs.is_empty() {
            errors.extend(errs);
            continue;
        }
        let Some(class) = class else { continue };
        let id = match existing {
            Some(c) => {
                plan.updated += 1;
                c.id
            }
            None => {
                plan.created += 1;
                CheckpointId(new_id())
            }
        };
        plan.ops.push(RefOp::Put(RefEntity::Checkpoint(Checkpoint {
            id,
            estate_id: current.estate_id,
            zone_id,
            code: code.to_owned(),
            name: name.to_owned(),
            class,
            location,
            radius_m,
            floor,
            instructions,
            tags,
        })));
        op_lines.push(line);
    }

    if let Err(es) = reference::apply(current, &plan.ops) {
        for e in es {
            let (line, field) = match plan.ops.get(e.at) {
                Some(RefOp::Put(RefEntity::Zone(_))) => (op_lines[e.at], "zone".to_owned()),
                Some(RefOp::Put(RefEntity::Checkpoint(c))) => {
                    (op_lines[e.at], checkpoint_column(c, &e.field))
                }
                _ => (op_lines.get(e.at).copied().unwrap_or(1), e.field.clone()),
            };
            errors.push(RefError {
                at: line,
                field,
                ..e
            });
        }
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        errors.sort_by_key(|e| e.at);
        Err(errors)
    }
}

/// Reads a routes CSV (see the module doc) the same way.
pub fn plan_routes(
    csv: &str,
    current: &ReferenceSet,
    new_id: &mut dyn FnMut() -> uuid::Uuid,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportPlan, Vec<RefError>> {
    let mut errors = Vec::new();
    let Some(sheet) = Sheet::read(
        csv,
        ROUTE_COLUMNS,
        &["route", "checkpoint"],
        progress,
        &mut errors,
    ) else {
        return Err(errors);
    };

    let cp_by_code: HashMap<&str, &Checkpoint> = current
        .checkpoints
        .iter()
        .map(|c| (c.code.as_str(), c))
        .collect();
    let route_by_code: HashMap<&str, &Route> = current
        .routes
        .iter()
        .map(|r| (r.code.as_str(), r))
        .collect();

    struct Stop {
        line: usize,
        position: Option<u32>,
        checkpoint: CheckpointId,
    }
    struct Draft {
        code: String,
        first_line: usize,
        name: Option<String>,
        strict: Option<bool>,
        expected_minutes: Option<u32>,
        stops: Vec<Stop>,
        bad: bool,
        cp_lines: HashMap<CheckpointId, usize>,
        position_lines: HashMap<u32, usize>,
    }
    let mut drafts: Vec<Draft> = Vec::new();
    let mut draft_index: HashMap<String, usize> = HashMap::new();

    for row in &sheet.rows {
        let line = row.line;
        let mut errs: Vec<RefError> = Vec::new();
        let mut bad = |code: &str, field: &str, msg: String| {
            errs.push(RefError::new(line, code, field, msg));
        };
        let cell = |name: &str| sheet.cell(row, name).unwrap_or("");

        let code = cell("route");
        if code.is_empty() {
            bad("missing_field", "route", "route is required".into());
        }
        let cp_code = cell("checkpoint");
        let checkpoint = if cp_code.is_empty() {
            bad(
                "missing_field",
                "checkpoint",
                "checkpoint is required".into(),
            );
            None
        } else {
            let c = cp_by_code.get(cp_code).map(|c| c.id);
            if c.is_none() {
                bad(
                    "unknown_checkpoint",
                    "checkpoint",
                    format!(
                        "checkpoint {:?} is not a checkpoint of this estate",
                        short(cp_code)
                    ),
                );
            }
            c
        };
        let strict_s = cell("strict");
        let strict = match strict_s.to_lowercase().as_str() {
            "" => None,
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => {
                bad(
                    "invalid_value",
                    "strict",
                    format!("strict {:?} is not true or false", short(strict_s)),
                );
                None
            }
        };
        let expected_s = cell("expected_minutes");
        let expected_minutes = if expected_s.is_empty() {
            None
        } else {
            let m = expected_s.parse::<u32>().ok();
            if m.is_none() {
                bad(
                    "invalid_value",
                    "expected_minutes",
                    format!(
                        "expected_minutes {:?} is not a whole number",
                        short(expected_s)
                    ),
                );
            }
            m
        };
        let position_s = cell("position");
        let position = if position_s.is_empty() {
            None
        } else {
            let p = position_s.parse::<u32>().ok().filter(|p| *p >= 1);
            if p.is_none() {
                bad(
                    "invalid_value",
                    "position",
                    format!(
                        "position {:?} is not a whole number from 1",
                        short(position_s)
                    ),
                );
            }
            p
        };

        if code.is_empty() {
            errors.extend(errs);
            continue;
        }
        let di = *draft_index.entry(code.to_owned()).or_insert_with(|| {
            drafts.push(Draft {
                code: code.to_owned(),
                first_line: line,
                name: None,
                strict: None,
                expected_minutes: None,
                stops: Vec::new(),
                bad: false,
                cp_lines: HashMap::new(),
                position_lines: HashMap::new(),
            });
            drafts.len() - 1
        });
        let d = &mut drafts[di];
        let name = cell("name");
        if d.name.is_none() && !name.is_empty() {
            d.name = Some(name.to_owned());
        }
        d.strict = d.strict.or(strict);
        d.expected_minutes = d.expected_minutes.or(expected_minutes);
        if let Some(cp) = checkpoint {
            match d.cp_lines.get(&cp) {
                Some(first) => bad(
                    "invalid_value",
                    "checkpoint",
                    format!(
                        "checkpoint {:?} is already on route {:?} at line {first}",
                        short(cp_code),
                        short(code)
                    ),
                ),
                None => {
                    d.cp_lines.insert(cp, line);
                }
            }
        }
        if let Some(p) = position {
            match d.position_lines.get(&p) {
                Some(first) => bad(
                    "invalid_value",
                    "position",
                    format!(
                        "position {p} of route {:?} is already on line {first}",
                        short(code)
                    ),
                ),
                None => {
                    d.position_lines.insert(p, line);
                }
            }
        }
        match checkpoint {
            Some(checkpoint) if errs.is_empty() => d.stops.push(Stop {
                line,
                position,
                checkpoint,
            }),
            _ => {
                d.bad = true;
                errors.extend(errs);
            }
        }
    }

    let mut plan = ImportPlan {
        ops: Vec::new(),
        rows: sheet.rows_read,
        created: 0,
        updated: 0,
        new_zones: Vec::new(),
    };
    // For each op: the route's first line, and the line of each stop in route order.
    let mut op_lines: Vec<(usize, Vec<usize>)> = Vec::new();
    for mut d in drafts {
        let positioned = d.stops.iter().filter(|s| s.position.is_some()).count();
        if positioned > 0 && positioned < d.stops.len() {
            for s in d.stops.iter().filter(|s| s.position.is_none()) {
                errors.push(RefError::new(
                    s.line,
                    "missing_field",
                    "position",
                    format!(
                        "position is required: other rows of route {:?} have one",
                        short(&d.code)
                    ),
                ));
            }
            continue;
        }
        if d.bad {
            continue;
        }
        d.stops.sort_by_key(|s| s.position);
        let existing = route_by_code.get(d.code.as_str()).copied();
        let id = match existing {
            Some(r) => {
                plan.updated += 1;
                r.id
            }
            None => {
                plan.created += 1;
                RouteId(new_id())
            }
        };
        let route = Route {
            id,
            estate_id: current.estate_id,
            name: d
                .name
                .or_else(|| existing.map(|r| r.name.clone()))
                .unwrap_or_else(|| d.code.clone()),
            strict: d.strict.or(existing.map(|r| r.strict)).unwrap_or(true),
            expected_minutes: d
                .expected_minutes
                .or(existing.map(|r| r.expected_minutes))
                .unwrap_or(DEFAULT_EXPECTED_MINUTES),
            checkpoints: d.stops.iter().map(|s| s.checkpoint).collect(),
            code: d.code,
        };
        plan.ops.push(RefOp::Put(RefEntity::Route(route)));
        op_lines.push((d.first_line, d.stops.iter().map(|s| s.line).collect()));
    }

    if let Err(es) = reference::apply(current, &plan.ops) {
        for e in es {
            let Some((first, stops)) = op_lines.get(e.at) else {
                errors.push(e);
                continue;
            };
            let (line, field) = match e.field.as_str() {
                "code" => (*first, "route".to_owned()),
                "checkpoints" => (*first, "checkpoint".to_owned()),
                f => match index_of(f, "checkpoints") {
                    Some(i) => (stops.get(i).copied().unwrap_or(*first), "checkpoint".into()),
                    None => (*first, f.to_owned()),
                },
            };
            errors.push(RefError {
                at: line,
                field,
                ..e
            });
        }
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        errors.sort_by_key(|e| e.at);
        Err(errors)
    }
}

/// Expected minutes of a new route that names none.
pub const DEFAULT_EXPECTED_MINUTES: u32 = 60;

const CHECKPOINT_COLUMNS: &[&str] = &[
    "code",
    "name",
    "class",
    "zone",
    "lat",
    "lng",
    "radius_m",
    "floor",
    "instructions",
    "nfc",
    "qr",
];

const ROUTE_COLUMNS: &[&str] = &[
    "route",
    "name",
    "strict",
    "expected_minutes",
    "position",
    "checkpoint",
];

/// The column of a checkpoints CSV behind a field [`reference::apply`] named.
fn checkpoint_column(c: &Checkpoint, field: &str) -> String {
    if let Some(i) = index_of(field, "tags") {
        if let Some(t) = c.tags.get(i) {
            return t.kind.as_str().to_owned();
        }
    }
    match field {
        "zone_id" => "zone",
        "location.lat" => "lat",
        "location.lng" => "lng",
        f => f,
    }
    .to_owned()
}

/// `3` of `checkpoints[3]` or `tags[3].value`, when `field` is an index into `list`.
fn index_of(field: &str, list: &str) -> Option<usize> {
    let rest = field.strip_prefix(list)?.strip_prefix('[')?;
    let (n, _) = rest.split_once(']')?;
    n.parse().ok()
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

/// One data row of a CSV file.
struct Row {
    /// The file line it starts on (1-based).
    line: usize,
    record: csv::StringRecord,
}

/// A CSV file read: its columns and its rows of the header's width.
struct Sheet {
    columns: HashMap<String, usize>,
    rows: Vec<Row>,
    rows_read: usize,
}

impl Sheet {
    /// Reads the header and every row. Header problems end the reading (`None`); a row of
    /// the wrong width is reported and left out.
    fn read(
        text: &str,
        known: &[&str],
        required: &[&str],
        progress: &mut dyn FnMut(usize),
        errors: &mut Vec<RefError>,
    ) -> Option<Sheet> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let mut lines = LineCounter::new(text);

        let (header_line, header) = match records.next() {
            None => (1, csv::StringRecord::new()),
            Some(Ok(r)) => (lines.line_of(r.position()), r),
            Some(Err(e)) => {
                errors.push(read_error(&e, lines.line_of(e.position())));
                return None;
            }
        };
        let mut columns = HashMap::new();
        let before = errors.len();
        for (i, name) in header.iter().enumerate() {
            let name = name.to_lowercase();
            if !known.contains(&name.as_str()) {
                errors.push(RefError::new(
                    header_line,
                    "invalid_value",
                    name.clone(),
                    format!(
                        "unknown column {:?}; the columns are {}",
                        short(&name),
                        known.join(", ")
                    ),
                ));
            } else if let std::collections::hash_map::Entry::Vacant(v) = columns.entry(name.clone())
            {
                v.insert(i);
            } else {
                errors.push(RefError::new(
                    header_line,
                    "invalid_value",
                    name.clone(),
                    format!("column {name:?} is in the header twice"),
                ));
            }
        }
        for r in required {
            if !columns.contains_key(*r) {
                errors.push(RefError::new(
                    header_line,
                    "missing_field",
                    *r,
                    format!("the header has no {r:?} column, which is required"),
                ));
            }
        }
        if errors.len() > before {
            return None;
        }

        let width = header.len();
        let mut rows = Vec::new();
        let mut rows_read = 0;
        for r in records {
            match r {
                Ok(record) => {
                    rows_read += 1;
                    progress(rows_read);
                    let line = lines.line_of(record.position());
                    if record.iter().all(str::is_empty) {
                        continue;
                    }
                    if record.len() != width {
                        errors.push(RefError::new(
                            line,
                            "invalid_value",
                            "row",
                            format!(
                                "this row has {} cells; the header has {width}",
                                record.len()
                            ),
                        ));
                        continue;
                    }
                    rows.push(Row { line, record });
                }
                Err(e) => {
                    let line = lines.line_of(e.position());
                    errors.push(read_error(&e, line));
                    break;
                }
            }
        }
        Some(Sheet {
            columns,
            rows,
            rows_read,
        })
    }

    /// A cell of a row, or `None` when the file has no such column.
    fn cell<'r>(&self, row: &'r Row, column: &str) -> Option<&'r str> {
        let i = *self.columns.get(column)?;
        Some(row.record.get(i).unwrap_or(""))
    }
}

/// Line numbers of records by their byte offsets. The csv crate's own line numbers are off
/// after CRLF and blank lines (it counts from the end of the previous record), so they are
/// counted here: a record starts at its first byte past any line breaks, and its line is one
/// more than the breaks before that (`\n`, `\r\n` or a lone `\r`).
struct LineCounter<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, at: Option<&csv::Position>) -> usize {
        let Some(at) = at else {
            return self.line;
        };
        let t = self.text;
        let mut start = usize::try_from(at.byte()).unwrap_or(t.len()).min(t.len());
        while start < t.len() && matches!(t[start], b'\r' | b'\n') {
            start += 1;
        }
        while self.pos < start {
            match t[self.pos] {
                b'\n' => self.line += 1,
                b'\r' if t.get(self.pos + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
            self.pos += 1;
        }
        self.line
    }
}

fn read_error(e: &csv::Error, line: usize) -> RefError {
    RefError::new(
        line,
        "invalid_value",
        "row",
        format!("this line cannot be read as CSV: {e}"),
    )
}

//! A fleet run: sign the handsets in, pull the reference data, plan, replay the plan with
//! time compression (retries, lost answers, timeouts as the policy says), upload photos,
//! work hazards with a supervisor's and an engineer's handset, and sum it all up.

use crate::client::{http_client, Session};
use crate::ledger::Ledger;
use crate::photo::Photo;
use crate::plan::{self, FleetPlan, HandsetPlan, HazardReport, PlanConfig, HOUR};
use crate::push::{percentile_ms, push_batch, tally, upload_photo, Counters, PushPolicy};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use shared_core::hlc::Hlc;
use shared_core::patrol::sim::{self, EstateSpec, Prng};
use shared_core::patrol::{RefOp, ReferenceSet};
use shared_core::wire::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Everything a run is told.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub base: String,
    /// Handset i signs in as `users[i % len]`.
    pub users: Vec<String>,
    pub password: String,
    /// Part of the estate's name (default: the first user's first estate).
    pub estate: Option<String>,
    /// Puts `sim::estate_plan(EstateSpec::demo())` when the estate has no checkpoints.
    pub plan_user: String,
    /// The hazard crew; `None` to leave hazards as reported.
    pub supervisor: Option<String>,
    pub engineer: Option<String>,
    pub seed: u64,
    pub handsets: usize,
    /// Simulated period, ending at `end` (default: the start of the run).
    pub sim_hours: f64,
    pub end: Option<i64>,
    /// Simulated seconds per real second.
    pub speed: f64,
    pub team_size: Option<usize>,
    pub max_batch: usize,
    pub p_hazard: f64,
    pub p_skewed_batch: f64,
    pub p_reboot_batch: f64,
    pub p_lost_answer: f64,
    pub p_timeout: f64,
    pub short_timeout: Duration,
    /// A reported hazard is worked through to closed (else left reported, or only assigned).
    pub p_work: f64,
    pub login_concurrency: usize,
    pub request_timeout: Duration,
    pub max_attempts: u32,
    /// Progress lines on stderr every this often (`None`: quiet).
    pub progress: Option<Duration>,
}

impl RunConfig {
    pub fn new(base: &str) -> RunConfig {
        RunConfig {
            base: base.trim_end_matches('/').to_owned(),
            users: vec!["guard1".into(), "guard2".into()],
            password: "demo".into(),
            estate: None,
            plan_user: "manager1".into(),
            supervisor: Some("supervisor1".into()),
            engineer: Some("engineer1".into()),
            seed: 20_261_207,
            handsets: 6,
            sim_hours: 8.0,
            end: None,
            speed: 600.0,
            team_size: None,
            max_batch: 100,
            p_hazard: 0.01,
            p_skewed_batch: 0.05,
            p_reboot_batch: 0.02,
            p_lost_answer: 0.05,
            p_timeout: 0.03,
            short_timeout: Duration::from_millis(1),
            p_work: 0.6,
            login_concurrency: 4,
            request_timeout: Duration::from_secs(120),
            max_attempts: 8,
            progress: Some(Duration::from_secs(5)),
        }
    }
}

/// What a run did.
pub struct RunReport {
    pub estate: Uuid,
    pub from: i64,
    pub to: i64,
    pub handsets: usize,
    pub counters: Counters,
    pub ledger: Ledger,
    pub plan_stats: plan::PlanStats,
    pub plan_put: bool,
    pub login_s: f64,
    pub replay_s: f64,
    pub wall_s: f64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Signs in `n` handsets (device ids from the seed, users round-robin), `concurrency` at a
/// time. Returns them in order.
pub async fn login_fleet(
    http: &reqwest::Client,
    base: &str,
    users: &[String],
    password: &str,
    devices: &[Uuid],
    concurrency: usize,
) -> anyhow::Result<Vec<Session>> {
    if users.is_empty() {
        bail!("no users to sign the handsets in as");
    }
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (i, d) in devices.iter().enumerate() {
        let (http, base, user, password, sem, d) = (
            http.clone(),
            base.to_owned(),
            users[i % users.len()].clone(),
            password.to_owned(),
            sem.clone(),
            *d,
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let s = Session::login(
                &http,
                &base,
                &user,
                &password,
                d,
                &format!("巡更机 fleet-sim handset {}", i + 1),
            )
            .await?;
            anyhow::Ok((i, s))
        });
    }
    let mut out: Vec<Option<Session>> = (0..devices.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, s) = r.context("a login task panicked")??;
        out[i] = Some(s);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Pulls `s`'s whole scope and builds the estate's reference data from it.
pub async fn pull_reference(
    s: &mut Session,
    estate: Uuid,
    timezone: &str,
) -> anyhow::Result<ReferenceSet> {
    let mut changes = Vec::new();
    s.pull_all(None, 5000, |c| {
        if c["collection"] != "facts" {
            changes.push(c.clone());
        }
    })
    .await?;
    plan::reference_from_pull(estate, timezone, &changes)
}

/// Puts the demo plan (`sim::estate_plan(EstateSpec::demo(), seed)`) into `estate` as
/// `s` (a manager or admin).
pub async fn put_demo_plan(s: &mut Session, estate: Uuid, seed: u64) -> anyhow::Result<usize> {
    let ops = sim::estate_plan(shared_core::EstateId(estate), &EstateSpec::demo(), seed);
    for op in &ops {
        let RefOp::Put(e) = op else { continue };
        let mut body = e.to_json();
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
            o.remove("estate_id");
        }
        s.put_json(
            &format!(
                "/v1/estates/{estate}/{}/{}",
                e.collection().as_str(),
                e.id()
            ),
            &body,
        )
        .await
        .context("putting the patrol plan")?;
    }
    Ok(ops.len())
}

/// The hazard crew: a supervisor and an engineer, each on their own handset, sharing one
/// HLC so their events order after each other.
struct Crew {
    sup: Session,
    eng: Session,
    sup_seq: u64,
    eng_seq: u64,
    hlc: Hlc,
    estate: Uuid,
    seed: u64,
    p_work: f64,
    ledger: Ledger,
    c: Counters,
    policy: PushPolicy,
}

enum Who {
    Sup,
    Eng,
}

impl Crew {
    /// Advances the crew's clock past an HLC the server answered with.
    fn observe(&mut self, answer: &Value) {
        if let Some(h) = answer["hlc"].as_str().and_then(|s| s.parse::<Hlc>().ok()) {
            if h > self.hlc {
                self.hlc = h;
            }
        }
    }

    fn tick(&mut self) -> (i64, String) {
        let now = now_ms();
        self.hlc = if now as u64 > self.hlc.ms {
            Hlc {
                ms: now as u64,
                counter: 0,
            }
        } else {
            self.hlc.successor()
        };
        (now, self.hlc.to_string())
    }

    /// Pushes `action` on `hazard` (with a photo of `role` when given) as `who`; true when
    /// the event was accepted.
    async fn event(
        &mut self,
        who: Who,
        hazard: Uuid,
        action: &str,
        fields: Value,
        photo_role: Option<&str>,
    ) -> anyhow::Result<bool> {
        let event_id = Uuid::now_v7();
        let mut changes = Vec::new();
        let mut photo = None;
        let estate = self.estate.to_string();
        if let Some(role) = photo_role {
            let p = Photo::new(Uuid::now_v7(), event_id.as_u128() as u64);
            let (now, hlc) = self.tick();
            changes.push(json!({
                "kind": "photo", "id": p.id.to_string(), "seq": 0, "hlc": hlc,
                "recorded_at": Timestamp(now).to_rfc3339(), "age_ms": 20,
                "data": { "estate_id": estate, "sha256": p.sha256, "bytes": p.bytes.len(),
                          "mime": "image/jpeg", "width": crate::photo::SIDE,
                          "height": crate::photo::SIDE,
                          "subject": { "kind": "hazard_event", "id": event_id.to_string() },
                          "role": role },
            }));
            photo = Some(p);
        }
        let (now, hlc) = self.tick();
        let mut data =
            json!({ "estate_id": estate, "hazard_id": hazard.to_string(), "action": action });
        if let (Some(d), Some(f)) = (data.as_object_mut(), fields.as_object()) {
            d.extend(f.clone());
        }
        changes.push(json!({
            "kind": "hazard_event", "id": event_id.to_string(), "seq": 0, "hlc": hlc,
            "recorded_at": Timestamp(now).to_rfc3339(), "age_ms": 10, "data": data,
        }));
        let (session, seq) = match who {
            Who::Sup => (&mut self.sup, &mut self.sup_seq),
            Who::Eng => (&mut self.eng, &mut self.eng_seq),
        };
        for ch in &mut changes {
            *seq += 1;
            ch["seq"] = json!(*seq);
            let kind = ch["kind"].as_str().unwrap_or("").to_owned();
            if let Some(id) = ch["id"].as_str().and_then(|s| s.parse().ok()) {
                self.ledger.add(&kind, id);
            }
        }
        let body = serde_json::to_vec(&json!({
            "device_id": session.device_id, "batch_id": Uuid::now_v7(),
            "sent_at": Timestamp(now_ms()).to_rfc3339(), "changes": changes,
        }))?;
        self.c.batches += 1;
        self.c.changes_sent += changes.len() as u64;
        let Some(answer) = push_batch(session, &body, &self.policy, &mut self.c).await? else {
            return Ok(false);
        };
        let statuses = tally(&changes, &answer, &mut self.c);
        if let Some(p) = &photo {
            upload_photo(session, &p.sha256, &p.bytes, &mut self.c).await;
        }
        self.observe(&answer);
        let ok = statuses
            .get(&event_id)
            .is_some_and(|(s, _)| s == "accepted");
        if !ok {
            self.c.hazard_events_refused += 1;
            if self.c.first_error.is_none() {
                self.c.first_error = Some(format!(
                    "the crew's {action} on hazard {hazard} was answered {:?}",
                    statuses.get(&event_id)
                ));
            }
        }
        Ok(ok)
    }

    /// Works one reported hazard: assigned and worked through to closed (`p_work`), only
    /// assigned, or left reported — decided by the seed and the hazard.
    async fn work(&mut self, r: &HazardReport, seen: &Value) -> anyhow::Result<()> {
        self.observe(seen);
        let mut rng = Prng::derive(self.seed, &[0xC4E3, r.hazard_id.as_u128() as u64]);
        let work = rng.chance(self.p_work);
        let assign_only = !work && rng.chance(0.5);
        if !work && !assign_only {
            return Ok(());
        }
        let due = Timestamp(now_ms() + 24 * HOUR).to_rfc3339();
        let engineer = self.eng.user_id.to_string();
        if !self
            .event(
                Who::Sup,
                r.hazard_id,
                "assign",
                json!({ "assignee": engineer, "due_at": due }),
                None,
            )
            .await?
        {
            return Ok(());
        }
        self.c.hazards_assigned += 1;
        if !work {
            return Ok(());
        }
        if r.major {
            let plan = json!({ "plan": {
                "goal": "Remove the hazard and keep the area safe meanwhile",
                "measures": "Cordon off, replace the failed parts, re-inspect weekly",
                "funds": "¥3,000", "owner": "Engineering",
                "deadline": Timestamp(now_ms() + 7 * 24 * HOUR).to_rfc3339() } });
            if !self
                .event(Who::Eng, r.hazard_id, "plan", plan, None)
                .await?
            {
                return Ok(());
            }
        }
        if !self
            .event(Who::Eng, r.hazard_id, "start", json!({}), None)
            .await?
        {
            return Ok(());
        }
        if !self
            .event(
                Who::Eng,
                r.hazard_id,
                "submit_fix",
                json!({ "note": "Fixed and tested (fleet-sim)" }),
                Some("after"),
            )
            .await?
        {
            return Ok(());
        }
        self.c.hazards_fixed += 1;
        if self
            .event(
                Who::Sup,
                r.hazard_id,
                "verify_pass",
                json!({ "note": "Checked on site: fixed" }),
                Some("verification"),
            )
            .await?
        {
            self.c.hazards_closed += 1;
        }
        Ok(())
    }
}

/// Replays one handset's plan: each batch at its scaled moment.
#[allow(clippy::too_many_arguments)]
async fn handset(
    mut s: Session,
    h: HandsetPlan,
    cfg: Arc<RunConfig>,
    from: i64,
    start: Instant,
    crew: Option<mpsc::UnboundedSender<(HazardReport, Value)>>,
    done: Arc<AtomicU64>,
) -> anyhow::Result<Counters> {
    let mut c = Counters::default();
    for (n, b) in h.batches.iter().enumerate() {
        let offset_ms = (b.received_at - from).max(0) as f64 / cfg.speed.max(1e-9);
        tokio::time::sleep_until((start + Duration::from_secs_f64(offset_ms / 1000.0)).into())
            .await;
        let mut rng = Prng::derive(cfg.seed, &[0xB47C, h.index as u64, n as u64]);
        let policy = PushPolicy {
            lost_answer: rng.chance(cfg.p_lost_answer),
            timeout_first: rng.chance(cfg.p_timeout),
            short_timeout: cfg.short_timeout,
            request_timeout: cfg.request_timeout,
            max_attempts: cfg.max_attempts,
        };
        c.batches += 1;
        c.changes_sent += b.changes.len() as u64;
        c.reboot_batches += b.rebooted as u64;
        c.skewed_batches += b.skewed as u64;
        let body = b.body_at(h.device_id, now_ms() - b.received_at);
        let answer = push_batch(&mut s, &body, &policy, &mut c)
            .await
            .with_context(|| format!("handset {} ({})", h.index + 1, s.username))?;
        done.fetch_add(1, Ordering::Relaxed);
        let Some(answer) = answer else { continue };
        let statuses = tally(&b.changes, &answer, &mut c);
        let missing: Vec<&str> = answer["photos_missing"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for p in &b.photos {
            if missing.contains(&p.sha256.as_str()) {
                upload_photo(&mut s, &p.sha256, &p.bytes, &mut c).await;
            }
        }
        for r in &b.reports {
            if statuses
                .get(&r.event_id)
                .is_some_and(|(st, _)| st == "accepted")
            {
                c.hazards_raised += 1;
                if let Some(tx) = &crew {
                    let _ = tx.send((r.clone(), answer["hlc"].clone()));
                }
            }
        }
    }
    Ok(c)
}

/// A whole run against `cfg.base`.
pub async fn run(cfg: RunConfig) -> anyhow::Result<RunReport> {
    let t0 = Instant::now();
    if cfg.handsets == 0 {
        bail!("--handsets must be at least 1");
    }
    if cfg.speed.is_nan() || cfg.speed <= 0.0 {
        bail!("--speed must be above 0");
    }
    let http = http_client(cfg.handsets + 4)?;
    let devices: Vec<Uuid> = plan::guards(cfg.seed, cfg.handsets)
        .iter()
        .map(|g| g.device_id.0)
        .collect();
    let progress = cfg.progress.is_some();
    if progress {
        eprintln!(
            "fleet-sim: signing in {} handsets as {} ({} at a time)...",
            cfg.handsets,
            cfg.users.join(", "),
            cfg.login_concurrency
        );
    }
    let mut sessions = login_fleet(
        &http,
        &cfg.base,
        &cfg.users,
        &cfg.password,
        &devices,
        cfg.login_concurrency,
    )
    .await?;
    let login_s = t0.elapsed().as_secs_f64();
    let (estate, tz) = sessions[0].estate(cfg.estate.as_deref())?;

    // Reference data: the first handset pulls; an estate without checkpoints gets the plan.
    let mut reference = pull_reference(&mut sessions[0], estate, &tz).await?;
    let mut plan_put = false;
    if reference.checkpoints.is_empty() {
        let mut m = Session::login(
            &http,
            &cfg.base,
            &cfg.plan_user,
            &cfg.password,
            Uuid::now_v7(),
            "fleet-sim planner",
        )
        .await?;
        let n = put_demo_plan(&mut m, estate, cfg.seed).await?;
        if progress {
            eprintln!(
                "fleet-sim: the estate had no patrol plan; put the demo plan ({n} entities) as {}",
                cfg.plan_user
            );
        }
        plan_put = true;
        reference = pull_reference(&mut sessions[0], estate, &tz).await?;
    }
    if reference.checkpoints.is_empty() {
        bail!("the estate {estate} has no checkpoints, even after putting the plan");
    }
    // Every other handset pulls its reference data too, as a handset does after signing in.
    {
        let sem = Arc::new(Semaphore::new(cfg.login_concurrency.max(1) * 2));
        let mut set = JoinSet::new();
        for (i, mut s) in sessions.drain(1..).enumerate() {
            let sem = sem.clone();
            let tz = tz.clone();
            set.spawn(async move {
                let _p = sem.acquire_owned().await?;
                pull_reference(&mut s, estate, &tz).await?;
                anyhow::Ok((i + 1, s))
            });
        }
        let mut rest: Vec<Option<Session>> = (0..cfg.handsets).map(|_| None).collect();
        while let Some(r) = set.join_next().await {
            let (i, s) = r.context("a pull task panicked")??;
            rest[i] = Some(s);
        }
        sessions.extend(rest.into_iter().flatten());
    }

    // The plan.
    let to = cfg.end.unwrap_or_else(now_ms);
    let from = to - (cfg.sim_hours * HOUR as f64) as i64;
    let mut pc = PlanConfig::new(cfg.seed, cfg.handsets, from, to);
    pc.team_size = cfg.team_size.unwrap_or(cfg.handsets);
    pc.max_batch = cfg.max_batch;
    pc.p_hazard = cfg.p_hazard;
    pc.p_skewed_batch = cfg.p_skewed_batch;
    pc.p_reboot_batch = cfg.p_reboot_batch;
    let FleetPlan {
        handsets,
        mut ledger,
        stats,
    } = plan::build(&reference, &pc);
    let total_batches = stats.batches as u64;
    if progress {
        eprintln!(
            "fleet-sim: planned {} changes in {} batches over {:.1} simulated hours; replaying at {}x (about {:.0} s)...",
            handsets.iter().flat_map(|h| &h.batches).map(|b| b.changes.len()).sum::<usize>(),
            total_batches,
            cfg.sim_hours,
            cfg.speed,
            cfg.sim_hours * 3600.0 / cfg.speed
        );
    }

    // The crew.
    let cfg = Arc::new(cfg);
    let (crew_tx, crew_task) = match (&cfg.supervisor, &cfg.engineer) {
        (Some(sup), Some(eng)) => {
            let (sd, ed) = plan::crew_devices(cfg.seed, cfg.handsets);
            let sup = Session::login(
                &http,
                &cfg.base,
                sup,
                &cfg.password,
                sd,
                "fleet-sim supervisor",
            )
            .await?;
            let eng = Session::login(
                &http,
                &cfg.base,
                eng,
                &cfg.password,
                ed,
                "fleet-sim engineer",
            )
            .await?;
            ledger.devices.insert(sd);
            ledger.devices.insert(ed);
            let (tx, mut rx) = mpsc::unbounded_channel::<(HazardReport, Value)>();
            let mut crew = Crew {
                sup,
                eng,
                sup_seq: 0,
                eng_seq: 0,
                hlc: Hlc { ms: 0, counter: 0 },
                estate,
                seed: cfg.seed,
                p_work: cfg.p_work,
                ledger: Ledger::default(),
                c: Counters::default(),
                policy: PushPolicy {
                    request_timeout: cfg.request_timeout,
                    max_attempts: cfg.max_attempts,
                    ..PushPolicy::default()
                },
            };
            let task = tokio::spawn(async move {
                while let Some((r, hlc)) = rx.recv().await {
                    crew.work(&r, &json!({ "hlc": hlc })).await?;
                }
                anyhow::Ok((crew.c, crew.ledger))
            });
            (Some(tx), Some(task))
        }
        _ => (None, None),
    };

    // The replay.
    let done = Arc::new(AtomicU64::new(0));
    let ticker = cfg.progress.map(|every| {
        let done = done.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                eprintln!(
                    "fleet-sim: {:>5.0} s: {}/{} batches pushed",
                    t.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed),
                    total_batches
                );
            }
        })
    });
    let start = Instant::now();
    let mut set = JoinSet::new();
    for (s, h) in sessions.into_iter().zip(handsets) {
        set.spawn(handset(
            s,
            h,
            cfg.clone(),
            from,
            start,
            crew_tx.clone(),
            done.clone(),
        ));
    }
    drop(crew_tx);
    let mut counters = Counters::default();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(c)) => counters.merge(c),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("a handset task panicked: {e}"));
            }
        }
    }
    if let Some(t) = crew_task {
        match t.await {
            Ok(Ok((c, l))) => {
                counters.merge(c);
                ledger.merge(&l);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e.context("the hazard crew"));
            }
            Err(e) => {
                first_err.get_or_insert(anyhow::anyhow!("the hazard crew panicked: {e}"));
            }
        }
    }
    let replay_s = start.elapsed().as_secs_f64();
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    counters.latencies.sort();
    counters.replay_latencies.sort();
    Ok(RunReport {
        estate,
        from,
        to,
        handsets: cfg.handsets,
        counters,
        ledger,
        plan_stats: stats,
        plan_put,
        login_s,
        replay_s,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

impl RunReport {
    /// The summary as JSON (`with_ids`: the ledger's fact ids too).
    pub fn to_json(&self, with_ids: bool) -> Value {
        let c = &self.counters;
        let lat = |v: &[Duration]| {
            json!({
                "count": v.len(),
                "p50_ms": percentile_ms(v, 0.5),
                "p99_ms": percentile_ms(v, 0.99),
                "max_ms": percentile_ms(v, 1.0),
            })
        };
        json!({
            "estate": self.estate,
            "from": Timestamp(self.from).to_rfc3339(),
            "to": Timestamp(self.to).to_rfc3339(),
            "handsets": self.handsets,
            "plan_put": self.plan_put,
            "login_s": (self.login_s * 100.0).round() / 100.0,
            "replay_s": (self.replay_s * 100.0).round() / 100.0,
            "wall_s": (self.wall_s * 100.0).round() / 100.0,
            "plan": {
                "scans": self.plan_stats.scans,
                "run_events": self.plan_stats.run_events,
                "hazard_reports": self.plan_stats.hazard_reports,
                "photos": self.plan_stats.photos,
                "batches": self.plan_stats.batches,
            },
            "pushes": c.batches,
            "push_requests": c.requests,
            "changes_sent": c.changes_sent,
            "replays_sent": c.replays_sent,
            "replay_mismatch": c.replay_mismatch,
            "timeouts": c.timeouts,
            "timeout_answered": c.timeout_answered,
            "retries": c.retries,
            "reboot_batches": c.reboot_batches,
            "skewed_batches": c.skewed_batches,
            "results": { "accepted": c.accepted, "duplicate": c.duplicate,
                         "rejected": c.rejected, "rejected_codes": c.rejected_codes },
            "ack_behind": c.ack_behind,
            "failed_batches": c.failed_batches,
            "hazards": { "raised": c.hazards_raised, "assigned": c.hazards_assigned,
                         "fixed": c.hazards_fixed, "closed": c.hazards_closed,
                         "events_refused": c.hazard_events_refused },
            "photos_uploaded": c.photos_uploaded,
            "photos_already_held": c.photos_already_held,
            "errors": c.errors,
            "error_count": c.error_count(),
            "first_error": c.first_error,
            "push_latency": lat(&c.latencies),
            "replay_latency": lat(&c.replay_latencies),
            "ledger": self.ledger.to_json(with_ids),
        })
    }

    /// Whether the run went as a handset would want: every batch answered, nothing
    /// rejected, acks complete, replays answered alike.
    pub fn clean(&self) -> bool {
        let c = &self.counters;
        c.failed_batches == 0 && c.rejected == 0 && c.ack_behind == 0 && c.replay_mismatch == 0
    }

    /// A table for the terminal.
    pub fn table(&self) -> String {
        let c = &self.counters;
        let mut rows: Vec<(String, String)> = vec![
            ("handsets".into(), self.handsets.to_string()),
            (
                "simulated period".into(),
                format!(
                    "{} .. {}",
                    Timestamp(self.from).to_rfc3339(),
                    Timestamp(self.to).to_rfc3339()
                ),
            ),
            ("sign-in".into(), format!("{:.1} s", self.login_s)),
            ("replay".into(), format!("{:.1} s", self.replay_s)),
            ("pushes (batches)".into(), c.batches.to_string()),
            ("push requests".into(), c.requests.to_string()),
            ("changes sent".into(), c.changes_sent.to_string()),
            (
                "replays sent (lost answers)".into(),
                format!(
                    "{} ({} answered differently)",
                    c.replays_sent, c.replay_mismatch
                ),
            ),
            (
                "timeouts".into(),
                format!(
                    "{} (+{} answered before the timeout)",
                    c.timeouts, c.timeout_answered
                ),
            ),
            ("retries".into(), c.retries.to_string()),
            ("rebooted batches".into(), c.reboot_batches.to_string()),
            ("skewed batches".into(), c.skewed_batches.to_string()),
            (
                "results".into(),
                format!(
                    "{} accepted, {} duplicate, {} rejected",
                    c.accepted, c.duplicate, c.rejected
                ),
            ),
            ("acks behind".into(), c.ack_behind.to_string()),
            (
                "hazards".into(),
                format!(
                    "{} raised, {} assigned, {} fixed, {} closed, {} events refused",
                    c.hazards_raised,
                    c.hazards_assigned,
                    c.hazards_fixed,
                    c.hazards_closed,
                    c.hazard_events_refused
                ),
            ),
            (
                "photos uploaded".into(),
                format!(
                    "{} (+{} already held)",
                    c.photos_uploaded, c.photos_already_held
                ),
            ),
            (
                "errors".into(),
                if c.errors.is_empty() {
                    "0".into()
                } else {
                    format!("{:?}", c.errors)
                },
            ),
            (
                "push latency".into(),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} pushes)",
                    percentile_ms(&c.latencies, 0.5),
                    percentile_ms(&c.latencies, 0.99),
                    percentile_ms(&c.latencies, 1.0),
                    c.latencies.len()
                ),
            ),
        ];
        for (k, n) in self.ledger.counts() {
            rows.push((format!("ledger: {k}"), n.to_string()));
        }
        rows.push(("ledger: total".into(), self.ledger.len().to_string()));
        let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<w$}  {v}\n"));
        }
        out
    }
}

/// Signs in `user` on a new device and verifies the ledger against a full pull.
pub async fn verify_as(
    base: &str,
    user: &str,
    password: &str,
    ledger: &Ledger,
) -> anyhow::Result<crate::verify::Verification> {
    let http = http_client(2)?;
    let mut s = Session::login(
        &http,
        base,
        user,
        password,
        Uuid::now_v7(),
        "fleet-sim verifier",
    )
    .await?;
    crate::verify::verify(&mut s, ledger).await
}

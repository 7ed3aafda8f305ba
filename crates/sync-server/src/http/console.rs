//! The manager web console at `/console/`: sign-in with a session cookie, page shells and
//! their static scripts, and the server-drawn coverage trend chart.
//!
//! The pages are plain ES modules (no build step) that fetch their data from the same `/v1`
//! API handsets and integrators use; the session cookie stands in for the Bearer token there
//! (see [`crate::auth`]). Nothing here answers a data query of its own except the trend
//! chart, and each of its points is exactly `GET /v1/estates/{id}/coverage` for that week.

use crate::auth::{request_cookie, same_secret, Caller, CSRF_COOKIE, SESSION_COOKIE};
use crate::clock::now_ms;
use crate::error::AppError;
use crate::http::extract::ApiQuery;
use crate::http::hazards::html_escape;
use crate::http::patrol::{load_period, PeriodParams};
use crate::http::AppState;
use crate::services;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use cookie::{Cookie, SameSite};
use rust_embed::RustEmbed;
use serde::Deserialize;
use shared_core::wire::{DeviceInfo, LoginRequest};
use shared_core::{DeviceId, EstateId, Role};

/// The console's files, compiled into the binary (`PATROL_CONSOLE_DIR` serves them from a
/// directory instead, for working on them without rebuilding).
#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

/// Pages served with the shell; each loads `pages/<name>.js`.
const PAGES: [&str; 5] = ["overview", "coverage", "missed", "hazards", "devices"];
/// Roles that may use the console.
pub const CONSOLE_ROLES: [Role; 3] = [Role::Supervisor, Role::Manager, Role::Admin];
/// The browser's own device id, kept across sign-ins so one browser is one device.
const DEVICE_COOKIE: &str = "ps_device";
/// The sign-in form's CSRF token (double submit: cookie and hidden field must match).
const LOGIN_COOKIE: &str = "ps_login";
const LANG_COOKIE: &str = "ps_lang";
const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/hazards/{id}", get(hazard_page))
        .route("/console/assets/{*path}", get(asset))
        .route("/console/charts/coverage-trend.svg", get(trend_chart))
        .route("/console/{page}", get(page))
}

// ------------------------------------------------------------------ language, cookies

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Zh,
    En,
}

impl Lang {
    fn of(headers: &HeaderMap) -> Lang {
        match request_cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
    fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" | "zh-CN" => Some(Lang::Zh),
            _ => None,
        }
    }
    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
    fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// `Secure` when the browser reached us over HTTPS: `cookie_secure` if set, else what the
/// load balancer says in `X-Forwarded-Proto` / `Forwarded` (a spoofed header can only add
/// `Secure`, never remove it from a real HTTPS request).
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(s) = state.config.cookie_secure {
        return s;
    }
    let proto = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    proto(header::HeaderName::from_static("x-forwarded-proto"))
        .is_some_and(|p| p.split(',').next().map(str::trim) == Some("https"))
        || proto(header::FORWARDED).is_some_and(|f| f.contains("proto=https"))
}

fn set_cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    http_only: bool,
    secure: bool,
    max_age_secs: i64,
) -> HeaderValue {
    let c = Cookie::build((name, value))
        .path(path)
        .http_only(http_only)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_secs));
    HeaderValue::from_str(&c.build().to_string()).expect("cookie values are base64url or uuid")
}

fn random_token() -> String {
    crate::auth::new_refresh_token()
}

/// Where to go after signing in: only a console path of this site (never another host),
/// printable ASCII only (it becomes a `Location` header; browsers percent-encode the rest).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/console/login")
                && n.len() <= 512 =>
        {
            n.to_owned()
        }
        _ => "/console/overview".to_owned(),
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

// ------------------------------------------------------------------ assets

async fn load_asset(state: &AppState, path: &str) -> Option<Vec<u8>> {
    if path
        .split('/')
        .any(|p| p.is_empty() || p == ".." || p == ".")
        || path.contains('\\')
    {
        return None;
    }
    match &state.config.console_dir {
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
        None => Assets::get(path).map(|f| f.data.into_owned()),
    }
}

async fn template(state: &AppState, name: &str) -> Result<String, AppError> {
    let bytes = load_asset(state, name)
        .await
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("console file {name} is missing")))?;
    String::from_utf8(bytes)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("console file {name} is not UTF-8")))
}

/// A static file of the console. They hold code, never data, so they need no session.
/// `ETag` is the content hash; browsers revalidate (`no-cache`) and get `304`.
async fn asset(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if path.ends_with(".html") {
        return Err(AppError::NotFound);
    }
    let bytes = load_asset(&state, &path).await.ok_or(AppError::NotFound)?;
    let etag = {
        use sha2::Digest;
        format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&bytes))[..32])
    };
    let mime = match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, mime)], bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

// ------------------------------------------------------------------ sign in and out

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// The sign-in page, with a fresh form token in a cookie and a hidden field.
async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, AppError> {
    let q: LoginQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let lang = q
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(Lang::of(&headers));
    let next = safe_next(q.next.as_deref());
    render_login(&state, &headers, lang, &next, StatusCode::OK, None).await
}

async fn render_login(
    state: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let token = random_token();
    let other = match lang {
        Lang::Zh => Lang::En,
        Lang::En => Lang::Zh,
    };
    let page = template(state, "login.html")
        .await?
        .replace("{{html_lang}}", lang.html())
        .replace(
            "{{title}}",
            lang.pick("巡更管理控制台", "Patrol management console"),
        )
        .replace(
            "{{error}}",
            &error
                .map(|e| {
                    format!(
                        "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
                        html_escape(e)
                    )
                })
                .unwrap_or_default(),
        )
        .replace("{{csrf}}", &token)
        .replace("{{next_q}}", &html_escape(&urlencode(next)))
        .replace("{{next}}", &html_escape(next))
        .replace("{{username}}", lang.pick("用户名", "Username"))
        .replace("{{password}}", lang.pick("密码", "Password"))
        .replace("{{submit}}", lang.pick("登录", "Sign in"))
        .replace("{{other_lang}}", other.code())
        .replace("{{other_lang_name}}", other.pick("中文", "English"));
    let secure = secure(state, headers);
    let mut resp = html_response(status, page);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, token, "/console/login", true, secure, 3600),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            LANG_COOKIE,
            lang.code().to_owned(),
            "/console",
            false,
            secure,
            365 * 86400,
        ),
    );
    Ok(resp)
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Signs in from the form: the same accounts and password check as `POST /v1/auth/login`,
/// as a device of its own (this browser). Only supervisors, managers and admins get a
/// console session.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let lang = Lang::of(&headers);
    let form: Option<LoginForm> = (body.len() <= MAX_FORM_BYTES)
        .then(|| serde_urlencoded::from_bytes(&body).ok())
        .flatten();
    let Some(form) = form else {
        return render_login(
            &state,
            &headers,
            lang,
            "/console/overview",
            StatusCode::BAD_REQUEST,
            Some(lang.pick(
                "表单无法识别，请重新登录。",
                "The form could not be read; please sign in again.",
            )),
        )
        .await;
    };
    let next = safe_next(form.next.as_deref());
    let expected = request_cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return render_login(
            &state,
            &headers,
            lang,
            &next,
            StatusCode::FORBIDDEN,
            Some(lang.pick(
                "登录表单已过期或来源不明，请重新输入。",
                "The sign-in form expired or did not come from this site; please try again.",
            )),
        )
        .await;
    }
    let device = request_cookie(&headers, DEVICE_COOKIE)
        .and_then(|d| d.parse::<DeviceId>().ok())
        .unwrap_or_else(|| DeviceId(uuid::Uuid::now_v7()));
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(60).collect::<String>());
    let console_member = |ms: &[crate::storage::Membership]| {
        ms.iter()
            .any(|m| !m.retired && CONSOLE_ROLES.contains(&m.role))
    };
    let tokens = services::auth::login_if(
        &state,
        LoginRequest {
            username: form.username.chars().take(200).collect(),
            password: form.password.chars().take(1000).collect(),
            device: DeviceInfo {
                id: device,
                name: Some("Web console".into()),
                platform: Some("web".into()),
                app_version: user_agent,
            },
        },
        console_member,
    )
    .await;
    let tokens = match tokens {
        Ok(Some(t)) => t,
        Ok(None) => {
            return render_login(
                &state,
                &headers,
                lang,
                &next,
                StatusCode::FORBIDDEN,
                Some(lang.pick(
                    "管理控制台仅供主管、经理和管理员使用；保安和工程人员请使用手持终端。",
                    "The console is for supervisors, managers and admins; guards and engineers use their handsets.",
                )),
            )
            .await
        }
        Err(AppError::InvalidCredentials) | Err(AppError::Validation(_)) => {
            return render_login(
                &state,
                &headers,
                lang,
                &next,
                StatusCode::UNAUTHORIZED,
                Some(lang.pick("用户名或密码错误。", "Wrong username or password.")),
            )
            .await
        }
        Err(AppError::Forbidden(_)) => {
            return render_login(
                &state,
                &headers,
                lang,
                &next,
                StatusCode::FORBIDDEN,
                Some(lang.pick(
                    "此浏览器已被经理停用。",
                    "This browser has been revoked by a manager.",
                )),
            )
            .await
        }
        Err(e) => return Err(e),
    };
    let claims = state.keys.verify(&tokens.access_token)?;
    let ttl = state.config.console_session_hours as i64 * 3600;
    let csrf = random_token();
    let cookie = state.keys.issue_console(
        claims.sub,
        claims.sid,
        claims.did,
        csrf.clone(),
        now_ms() / 1000,
        ttl,
    )?;
    let secure = secure(&state, &headers);
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, cookie, "/", true, secure, ttl),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, csrf, "/", false, secure, ttl),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            DEVICE_COOKIE,
            device.to_string(),
            "/console",
            true,
            secure,
            400 * 86400,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            String::new(),
            "/console/login",
            true,
            secure,
            0,
        ),
    );
    tracing::info!(user = %claims.sub, device = %device, "console sign-in");
    Ok(resp)
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Signs out: ends the session (its cookie stops working at once) and clears the cookies.
/// The form must carry the session's CSRF token.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let form: LogoutForm = (body.len() <= MAX_FORM_BYTES)
        .then(|| serde_urlencoded::from_bytes(&body).ok())
        .flatten()
        .unwrap_or(LogoutForm {
            csrf: String::new(),
        });
    let claims =
        request_cookie(&headers, SESSION_COOKIE).and_then(|c| state.keys.verify_console(&c).ok());
    if let Some(claims) = claims {
        if !same_secret(&form.csrf, &claims.csrf) {
            let lang = Lang::of(&headers);
            return Ok(html_response(
                StatusCode::FORBIDDEN,
                format!(
                    "<!doctype html><meta charset=utf-8><title>403</title><p>{}</p><p><a href=\"/console/overview\">{}</a></p>",
                    lang.pick("退出请求缺少有效的表单令牌。", "The sign-out request did not carry a valid form token."),
                    lang.pick("返回控制台", "Back to the console")
                ),
            ));
        }
        state
            .store
            .revoke_session(crate::storage::SessionId(claims.sid), "logout", now_ms())
            .await?;
        tracing::info!(user = %claims.sub, "console sign-out");
    }
    let secure = secure(&state, &headers);
    let mut resp = Redirect::to("/console/login").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, String::new(), "/", true, secure, 0),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, String::new(), "/", false, secure, 0),
    );
    Ok(resp)
}

// ------------------------------------------------------------------ pages

fn may_use_console(caller: &Caller) -> bool {
    !caller.estates_with(&CONSOLE_ROLES).is_empty()
}

async fn shell(
    state: &AppState,
    headers: &HeaderMap,
    caller: Result<Caller, AppError>,
    page: &str,
    path_and_query: &str,
) -> Result<Response, AppError> {
    let caller = match caller {
        Ok(c) => c,
        Err(AppError::Unauthorized(_)) | Err(AppError::InvalidToken(_)) => {
            return Ok(Redirect::to(&format!(
                "/console/login?next={}",
                urlencode(path_and_query)
            ))
            .into_response())
        }
        Err(e) => return Err(e),
    };
    let lang = Lang::of(headers);
    if !may_use_console(&caller) {
        return Ok(html_response(
            StatusCode::FORBIDDEN,
            format!(
                "<!doctype html><meta charset=utf-8><title>403</title><p id=\"forbidden\">{}</p>",
                lang.pick(
                    "管理控制台仅供主管、经理和管理员使用。",
                    "The console is for supervisors, managers and admins."
                )
            ),
        ));
    }
    let csrf = request_cookie(headers, SESSION_COOKIE)
        .and_then(|c| state.keys.verify_console(&c).ok())
        .map(|c| c.csrf)
        .unwrap_or_default();
    let body = template(state, "shell.html")
        .await?
        .replace("{{html_lang}}", lang.html())
        .replace("{{page}}", page)
        .replace("{{csrf}}", &html_escape(&csrf));
    Ok(html_response(StatusCode::OK, body))
}

fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

async fn page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    caller: Result<Caller, AppError>,
) -> Result<Response, AppError> {
    let Some(page) = PAGES.iter().find(|p| **p == name) else {
        return Err(AppError::NotFound);
    };
    shell(&state, &headers, caller, page, &path_and_query(&uri)).await
}

async fn hazard_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    caller: Result<Caller, AppError>,
) -> Result<Response, AppError> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(AppError::NotFound);
    }
    shell(&state, &headers, caller, "hazard", &path_and_query(&uri)).await
}

// ------------------------------------------------------------------ the trend chart

#[derive(Deserialize)]
struct TrendQuery {
    estate: String,
    weeks: Option<u32>,
    lang: Option<String>,
}

/// Weekly coverage, strict and verified coverage over the last `weeks` (default 8, at most
/// 26) local weeks, Monday to Monday, the current week so far last, drawn as SVG.
async fn trend_chart(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ApiQuery(q): ApiQuery<TrendQuery>,
) -> Result<Response, AppError> {
    let weeks = q.weeks.unwrap_or(8).clamp(1, 26);
    let lang = q
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or(Lang::of(&headers));
    let estate: EstateId = q.estate.parse().map_err(|_| AppError::NotFound)?;
    caller.require_role(estate, &CONSOLE_ROLES)?;
    let reference = state.store.reference(estate).await?;
    let tz = services::patrol::zone_of(&reference);
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let monday = today - chrono::Duration::days(today.weekday_from_monday() as i64);
    let mut points = Vec::new();
    for w in (0..weeks).rev() {
        let start = monday - chrono::Duration::weeks(w as i64);
        let end = start + chrono::Duration::weeks(1);
        let p = PeriodParams {
            from: Some(start.to_string()),
            to: (w > 0).then(|| end.to_string()),
            ..Default::default()
        };
        let totals = load_period(&state, &caller, &q.estate, &p, false)
            .await?
            .report(None)
            .totals;
        points.push(TrendPoint {
            label: start.format("%m-%d").to_string(),
            coverage: totals.coverage,
            strict: totals.strict_coverage,
            verified: totals.verified_coverage,
        });
    }
    let svg = trend_svg(
        &points,
        [
            lang.pick("覆盖率", "coverage"),
            lang.pick("准时率", "on time (strict)"),
            lang.pick("可信率", "verified"),
        ],
        lang.pick(
            "每周巡更覆盖率（周一起）",
            "Weekly patrol coverage (weeks from Monday)",
        ),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        svg,
    )
        .into_response())
}

trait WeekdayFromMonday {
    fn weekday_from_monday(&self) -> u32;
}

impl WeekdayFromMonday for chrono::NaiveDate {
    fn weekday_from_monday(&self) -> u32 {
        use chrono::Datelike;
        self.weekday().num_days_from_monday()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrendPoint {
    pub label: String,
    pub coverage: Option<f64>,
    pub strict: Option<f64>,
    pub verified: Option<f64>,
}

const SERIES_COLOURS: [&str; 3] = ["#2457c5", "#2e8b57", "#b5651d"];

/// Draws the weekly trend: one line per series on a 0–100 % axis, a dot per week with its
/// value as a tooltip, gaps where a week had no decided slots.
pub fn trend_svg(points: &[TrendPoint], names: [&str; 3], title: &str) -> String {
    use std::fmt::Write;
    let (w, h) = (720.0_f64, 260.0_f64);
    let (left, right, top, bottom) = (44.0, 16.0, 44.0, 28.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let n = points.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\" font-family=\"system-ui, sans-serif\" font-size=\"11\">\
         <title>{t}</title><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\
         <text x=\"{left}\" y=\"14\" font-size=\"13\" font-weight=\"600\">{t}</text>",
        t = html_escape(title)
    );
    for pct in [0, 25, 50, 75, 100] {
        let yy = y(pct as f64 / 100.0);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e6ec\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#667085\">{pct}%</text>",
            left + plot_w,
            left - 6.0,
            yy + 4.0
        );
    }
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#667085\">{}</text>",
            x(i),
            h - 8.0,
            html_escape(&p.label)
        );
    }
    for (k, name) in names.iter().enumerate() {
        let colour = SERIES_COLOURS[k];
        let value = |p: &TrendPoint| [p.coverage, p.strict, p.verified][k];
        // Runs of consecutive known values become one polyline each.
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, s: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for (i, p) in points.iter().enumerate() {
            match value(p) {
                Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(v))),
                None => flush(&mut run, &mut s),
            }
        }
        flush(&mut run, &mut s);
        for (i, p) in points.iter().enumerate() {
            if let Some(v) = value(p) {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {}: {:.1}%</title></circle>",
                    x(i),
                    y(v),
                    html_escape(&p.label),
                    html_escape(name),
                    v * 100.0
                );
            }
        }
        // The legend: a line under the title.
        let lx = left + k as f64 * 160.0;
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"24\" width=\"12\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"30\">{}</text>",
            lx + 16.0,
            html_escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, c: Option<f64>) -> TrendPoint {
        TrendPoint {
            label: label.into(),
            coverage: c,
            strict: c.map(|v| v / 2.0),
            verified: None,
        }
    }

    #[test]
    fn trend_draws_a_dot_per_known_value_and_breaks_lines_at_gaps() {
        let svg = trend_svg(
            &[
                point("11-02", Some(1.0)),
                point("11-09", Some(0.5)),
                point("11-16", None),
                point("11-23", Some(0.0)),
            ],
            ["a", "b", "c"],
            "t <&>",
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Coverage: 3 dots; one polyline (the 100 % → 50 % run); the lone last week has a
        // dot but no line. Strict: the same. Verified: nothing.
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("11-09 a: 50.0%"));
        assert!(svg.contains("11-09 b: 25.0%"));
        assert!(svg.contains("t &lt;&amp;&gt;"), "the title is escaped");
        // 100 % is at the top of the plot, 0 % at the bottom.
        assert!(svg.contains("cy=\"44.0\""));
        assert!(svg.contains("cy=\"232.0\""));
    }

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(
            safe_next(Some("/console/coverage?estate=x")),
            "/console/coverage?estate=x"
        );
        for bad in [
            "https://evil.example/console/",
            "//evil.example/console/",
            "/console//evil.example",
            "/v1/me",
            "/console/login?next=/x",
            "/console/\\evil",
            "/console/x\r\nSet-Cookie: a=b",
            "/console/over view",
            "/console/概览",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console/overview", "{bad}");
        }
        assert_eq!(safe_next(None), "/console/overview");
    }

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            urlencode("/console/coverage?a=1&b=2"),
            "%2Fconsole%2Fcoverage%3Fa%3D1%26b%3D2"
        );
    }
}

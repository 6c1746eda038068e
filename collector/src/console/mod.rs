//! The ticket console under `/console`: server-rendered HTML for the people who work the queue
//! (incidents stage → **console**, next to the JSON API of [`crate::api`], on the same router).
//!
//! Logins take the same tokens as the API (the `[[api.tokens]]` users with their roles) and the
//! `[[api.departments]]` logins; a login opens a session held here (cookie: HttpOnly,
//! SameSite=Strict, path `/console`), and every form POST carries the session's CSRF token. Every
//! read and change goes through the shared [`Api`] operations and the API's own parsers, so the
//! console and the API obey one set of rules and roles. A department sees only its own tickets,
//! their customer-facing updates and call-backs, read-only. English and Simplified Chinese, chosen
//! by `Accept-Language` or the language switch ([`render`]).

mod pages;
mod render;

pub use render::{Lang, RenderError, Renderer};

use crate::api::{Api, Principal};
use crate::config::ApiConfig;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the console lives.
pub const PREFIX: &str = "/console";
const SESSION_COOKIE: &str = "faultline_session";
const LANG_COOKIE: &str = "faultline_lang";
/// How long a session lasts after login.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const CSS: &str = include_str!("console.css");

struct Session {
    principal: Principal,
    csrf: String,
    expires: Instant,
}

/// The console's state: the shared API, the renderer and the open sessions.
pub struct Console {
    api: Arc<Api>,
    renderer: Renderer,
    sessions: Mutex<HashMap<String, Session>>,
    secure_cookies: bool,
}

impl Console {
    /// The console over `api`, showing times in `config.time_zone`; `secure_cookies` when served
    /// over TLS.
    pub fn new(
        api: Arc<Api>,
        config: &ApiConfig,
        secure_cookies: bool,
    ) -> Result<Self, RenderError> {
        Ok(Self {
            api,
            renderer: Renderer::new(config.time_zone.as_deref())?,
            sessions: Mutex::new(HashMap::new()),
            secure_cookies,
        })
    }
}

/// The console's routes, under [`PREFIX`].
pub fn router(console: Console) -> Router {
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    let mut router = Router::new()
        .route(PREFIX, get(|| async { Redirect::to("/console/tickets") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(language))
        .route("/console/console.css", get(css))
        .route("/console/tickets", get(pages::queue))
        .route("/console/tickets/{id}", get(pages::ticket))
        .route("/console/tickets/{id}/{action}", post(pages::act))
        .route(
            "/console/tickets/{id}/attachments/{number}",
            get(pages::attachment),
        )
        .route("/console/new", get(pages::new_form).post(pages::create))
        .with_state(Arc::new(console));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

/// Who is logged in on a request, with what the pages need to know of them.
struct Visitor {
    principal: Principal,
    csrf: String,
    lang: Lang,
}

impl Visitor {
    /// The department, when a department is logged in.
    fn department(&self) -> Option<&str> {
        match &self.principal {
            Principal::Department(department) => Some(department),
            Principal::User(_) => None,
        }
    }
}

impl Console {
    /// The language of a request: the switch's cookie, else `Accept-Language`.
    fn lang(jar: &CookieJar, headers: &HeaderMap) -> Lang {
        jar.get(LANG_COOKIE)
            .and_then(|c| Lang::from_tag(c.value()))
            .unwrap_or_else(|| {
                Lang::negotiate(
                    headers
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                )
            })
    }

    /// The visitor of a live session, or the way to the login page.
    fn visitor(&self, jar: &CookieJar, headers: &HeaderMap) -> Result<Visitor, Redirect> {
        let lang = Self::lang(jar, headers);
        let id = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match id
            .as_deref()
            .and_then(|id| sessions.get(id).map(|s| (id, s)))
        {
            Some((_, session)) if session.expires > Instant::now() => Ok(Visitor {
                principal: session.principal.clone(),
                csrf: session.csrf.clone(),
                lang,
            }),
            Some((id, _)) => {
                let id = id.to_string();
                sessions.remove(&id);
                Err(Redirect::to("/console/login"))
            }
            None => Err(Redirect::to("/console/login")),
        }
    }

    /// A page: `template` with `context` plus the visitor's messages, language and CSRF token.
    fn page(
        &self,
        status: StatusCode,
        template: &str,
        lang: Lang,
        visitor: Option<&Visitor>,
        context: minijinja::Value,
    ) -> Response {
        let who = visitor.map(|v| match &v.principal {
            Principal::User(user) => user.name.clone(),
            Principal::Department(department) => department.clone(),
        });
        let base = minijinja::context! {
            m => self.renderer.messages(lang),
            lang => lang.tag(),
            other_lang => match lang { Lang::En => Lang::Zh.tag(), Lang::Zh => Lang::En.tag() },
            who => who,
            department => visitor.and_then(Visitor::department),
            csrf => visitor.map(|v| v.csrf.clone()),
        };
        match self
            .renderer
            .render(template, minijinja::context! { ..base, ..context })
        {
            Ok(html) => (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, template, "console page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "render failed\n").into_response()
            }
        }
    }

    /// An error page naming what went wrong.
    fn error(&self, status: StatusCode, visitor: &Visitor, message: &str) -> Response {
        self.page(
            status,
            "error.html",
            visitor.lang,
            Some(visitor),
            minijinja::context! { status => status.as_u16(), message => message },
        )
    }
}

async fn login_page(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let lang = Console::lang(&jar, &headers);
    console.page(
        StatusCode::OK,
        "login.html",
        lang,
        None,
        minijinja::context! { failed => false },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(principal) = console
        .api
        .authenticate(form.token.trim().as_bytes())
        .cloned()
    else {
        tracing::info!("console login refused: unknown token");
        let lang = Console::lang(&jar, &headers);
        return console.page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            lang,
            None,
            minijinja::context! { failed => true },
        );
    };
    let id = hex(&rand::random::<[u8; 32]>());
    let csrf = hex(&rand::random::<[u8; 32]>());
    match &principal {
        Principal::User(user) => tracing::info!(user = %user.name, "console login"),
        Principal::Department(department) => {
            tracing::info!(department = %department, "console department login")
        }
    }
    {
        let now = Instant::now();
        let mut sessions = console.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                principal,
                csrf,
                expires: now + SESSION_TTL,
            },
        );
    }
    let cookie = Cookie::build((SESSION_COOKIE, id))
        .path(PREFIX)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(console.secure_cookies)
        .build();
    (jar.add(cookie), Redirect::to("/console/tickets")).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    if !csrf_matches(&visitor, &form.csrf) {
        return console.error(StatusCode::FORBIDDEN, &visitor, "CSRF token mismatch");
    }
    if let Some(id) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let mut sessions = console.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&id);
    }
    let gone = Cookie::build((SESSION_COOKIE, "")).path(PREFIX).build();
    (jar.remove(gone), Redirect::to("/console/login")).into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// Sets the language cookie and goes back where the switch was clicked (only within the console).
async fn language(jar: CookieJar, Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::from_tag(&q.to).unwrap_or(Lang::En);
    let back = if q.back.starts_with("/console") && !q.back.starts_with("/console//") {
        q.back
    } else {
        "/console/tickets".to_string()
    };
    let cookie = Cookie::build((LANG_COOKIE, lang.tag()))
        .path(PREFIX)
        .same_site(SameSite::Strict)
        .permanent()
        .build();
    (jar.add(cookie), Redirect::to(&back)).into_response()
}

async fn css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        CSS,
    )
        .into_response()
}

/// Whether a form's CSRF token is the session's (constant time).
fn csrf_matches(visitor: &Visitor, sent: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(visitor.csrf.as_bytes().ct_eq(sent.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;

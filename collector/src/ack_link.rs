//! Acknowledge-from-the-page links (incidents → notifications → **the on-call's phone** → API).
//!
//! A page carries `ack_url`: `<public url>/api/v1/ack/<token>`, where the token names the ticket,
//! the on-call person paged and an expiry, signed with HMAC-SHA256 under the collector's key
//! (`[api] ack_link_key_file`). Opening the link acknowledges the ticket as that person, without
//! an API token — the signature is the credential, so a robot message, a PagerDuty incident or an
//! SMS is enough to stop the escalation. [`sign`] and [`verify`] are pure; [`AckLinks`] holds the
//! key and builds the URLs (the notifier stage puts one into every page); [`router`] answers
//! `GET` or `POST /api/v1/ack/<token>` through [`AckEndpoint::serve`]: 200 and the acknowledged ticket, 403 for a link
//! that is tampered, expired or signed with another key, 409 when the ticket cannot be
//! acknowledged any more (resolved, or acknowledged already).
//!
//! Token: `v1.<ticket>.<expires ms>.<person, base64url>.<signature, base64url>`; the signature
//! covers everything before its dot. Verification compares in constant time (`Mac::verify_slice`),
//! then checks the expiry.

use crate::api::{Refusal, Request};
use crate::config::ApiConfig;
use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use faultline_incidents::Command;
use faultline_incidents::Millis;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Where acknowledge links are served: `<public url>/api/v1/ack/<token>`.
pub const PREFIX: &str = "/api/v1/ack/";

/// How long a link is valid unless `[api] ack_link_ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

type HmacSha256 = Hmac<Sha256>;

/// The least key length accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// What a link grants: acknowledging `ticket` as `person` until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Ticket id.
    pub ticket: u64,
    /// The on-call person's id, who acknowledges.
    pub person: String,
    /// Valid before this time, ms since the Unix epoch.
    pub expires_ms: Millis,
}

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckLinkError {
    /// Not a token of this format.
    #[error("not an acknowledge link")]
    Malformed,
    /// The signature does not match (tampered, or signed with another key).
    #[error("the link's signature does not match")]
    BadSignature,
    /// Signed, but past its expiry.
    #[error("the link expired")]
    Expired,
    /// The key is shorter than [`MIN_KEY_LEN`].
    #[error("an acknowledge link key needs at least {MIN_KEY_LEN} bytes")]
    ShortKey,
}

/// The signing key, checked: at least [`MIN_KEY_LEN`] bytes.
#[derive(Clone)]
pub struct AckKey(HmacSha256);

impl std::fmt::Debug for AckKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKey(..)")
    }
}

impl AckKey {
    /// A key from its bytes (the key file's content, surrounding whitespace trimmed).
    pub fn new(bytes: &[u8]) -> Result<AckKey, AckLinkError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(AckLinkError::ShortKey);
        }
        HmacSha256::new_from_slice(bytes)
            .map(AckKey)
            .map_err(|_| AckLinkError::ShortKey)
    }
}

fn mac(key: &AckKey, payload: &str) -> HmacSha256 {
    let mut mac = key.0.clone();
    mac.update(payload.as_bytes());
    mac
}

/// The token for `claims` under `key`.
pub fn sign(key: &AckKey, claims: &Claims) -> String {
    let payload = format!(
        "v1.{}.{}.{}",
        claims.ticket,
        claims.expires_ms,
        URL_SAFE_NO_PAD.encode(claims.person.as_bytes())
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// The claims of `token` if `key` signed it and it has not expired at `now_ms`.
pub fn verify(key: &AckKey, token: &str, now_ms: Millis) -> Result<Claims, AckLinkError> {
    let (payload, signature) = token.rsplit_once('.').ok_or(AckLinkError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| AckLinkError::Malformed)?;
    let mut parts = payload.split('.');
    let (Some("v1"), Some(ticket), Some(expires), Some(person), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AckLinkError::Malformed);
    };
    mac(key, payload)
        .verify_slice(&signature)
        .map_err(|_| AckLinkError::BadSignature)?;
    let claims = Claims {
        ticket: ticket.parse().map_err(|_| AckLinkError::Malformed)?,
        expires_ms: expires.parse().map_err(|_| AckLinkError::Malformed)?,
        person: URL_SAFE_NO_PAD
            .decode(person)
            .ok()
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or(AckLinkError::Malformed)?,
    };
    if now_ms >= claims.expires_ms {
        return Err(AckLinkError::Expired);
    }
    Ok(claims)
}

/// Signs acknowledge links: the key, the collector's public URL and the links' lifetime.
#[derive(Debug, Clone)]
pub struct AckLinks {
    key: AckKey,
    base: String,
    ttl_ms: Millis,
}

impl AckLinks {
    /// From `[api]`: `None` without `ack_link_key_file`; an error when the key file cannot be read
    /// or is too short (the config's validation already required `public_url` with it).
    pub fn load(config: &ApiConfig) -> anyhow::Result<Option<AckLinks>> {
        let Some(path) = &config.ack_link_key_file else {
            return Ok(None);
        };
        let text = std::fs::read(path)
            .with_context(|| format!("api.ack_link_key_file {}", path.display()))?;
        let key = AckKey::new(text.trim_ascii())
            .with_context(|| format!("api.ack_link_key_file {}", path.display()))?;
        let base = config
            .public_url
            .as_deref()
            .context("api.public_url is needed with api.ack_link_key_file")?
            .trim_end_matches('/')
            .to_string();
        let ttl = config.ack_link_ttl.unwrap_or(DEFAULT_TTL);
        Ok(Some(AckLinks {
            key,
            base,
            ttl_ms: Millis::try_from(ttl.as_millis()).unwrap_or(Millis::MAX),
        }))
    }

    /// The link that acknowledges `ticket` as `person`, valid from `now_ms` for the lifetime.
    pub fn url(&self, ticket: u64, person: &str, now_ms: Millis) -> String {
        let claims = Claims {
            ticket,
            person: person.to_string(),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
        };
        format!("{}{PREFIX}{}", self.base, sign(&self.key, &claims))
    }
}

/// The HTTP side: verifies a link and acknowledges its ticket through the incidents stage.
#[derive(Debug)]
pub struct AckEndpoint {
    links: AckLinks,
    requests: mpsc::Sender<Request>,
}

impl AckEndpoint {
    /// Serves links signed by `links`, sending the acknowledgements to the incidents stage.
    pub fn new(links: AckLinks, requests: mpsc::Sender<Request>) -> Self {
        Self { links, requests }
    }

    /// Answers a `GET`/`POST` of the link `token` (the path after [`PREFIX`]) at `now_ms`.
    pub async fn serve(&self, token: &str, now_ms: Millis) -> Response {
        let claims = match verify(&self.links.key, token, now_ms) {
            Ok(claims) => claims,
            Err(e) => {
                tracing::warn!(error = %e, "acknowledge link refused");
                return answer(StatusCode::FORBIDDEN, &e.to_string(), None);
            }
        };
        let (reply, answered) = oneshot::channel();
        let request = Request::Change {
            id: claims.ticket,
            command: Command::Acknowledge {
                by: claims.person.clone(),
            },
            reply,
        };
        let gone = || Refusal::Unavailable("the incidents stage is not running".into());
        let outcome = match self.requests.send(request).await {
            Ok(()) => answered.await.unwrap_or_else(|_| Err(gone())),
            Err(_) => Err(gone()),
        };
        match outcome {
            Ok(ticket) => {
                tracing::info!(ticket = ticket.id, by = %claims.person, "ticket acknowledged from a page link");
                let text = format!("Ticket #{} acknowledged by {}.", ticket.id, claims.person);
                answer(StatusCode::OK, &text, Some(ticket.id))
            }
            Err(refusal) => {
                let status = match refusal {
                    Refusal::NotFound(_) => StatusCode::NOT_FOUND,
                    Refusal::Conflict(_) => StatusCode::CONFLICT,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                answer(status, &refusal.to_string(), Some(claims.ticket))
            }
        }
    }
}

/// The route of acknowledge links, `GET`/`POST /api/v1/ack/{token}`; without an endpoint
/// (`[api]` has no key) every link is answered 404.
pub fn router(endpoint: Option<Arc<AckEndpoint>>) -> Router {
    Router::new()
        .route(&format!("{PREFIX}{{token}}"), get(ack).post(ack))
        .with_state(endpoint)
}

/// `GET`/`POST /api/v1/ack/{token}`: acknowledges the ticket a page's link names, as the paged
/// engineer; the signature is the credential.
#[utoipa::path(get, path = "/api/v1/ack/{token}", tag = "pages",
    params(("token" = String, Path, description = "The signed link token from the page's `ack_url`")),
    responses(
        (status = 200, description = "Acknowledged", body = AckAnswer),
        (status = 403, description = "Tampered, expired or signed with another key", body = AckAnswer),
        (status = 404, description = "No such ticket, or acknowledge links are off", body = AckAnswer),
        (status = 409, description = "Resolved or acknowledged already", body = AckAnswer),
    ))]
pub(crate) async fn ack(
    State(endpoint): State<Option<Arc<AckEndpoint>>>,
    Path(token): Path<String>,
) -> Response {
    match endpoint {
        Some(endpoint) => endpoint.serve(&token, faultline_wire::now_ms()).await,
        None => answer(StatusCode::NOT_FOUND, "acknowledge links are off", None),
    }
}

/// The answer to an acknowledge link.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AckAnswer {
    /// What happened, for the person who opened the link.
    message: String,
    /// The ticket the link names, when it could be read.
    ticket: Option<u64>,
}

/// A small JSON answer: `{"message": …, "ticket": …}`.
fn answer(status: StatusCode, message: &str, ticket: Option<u64>) -> Response {
    let body = AckAnswer {
        message: message.to_string(),
        ticket,
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> AckKey {
        AckKey::new(bytes).unwrap()
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: Millis = 1_700_000_000_000;

    fn claims() -> Claims {
        Claims {
            ticket: 42,
            person: "ana".into(),
            expires_ms: NOW + 60_000,
        }
    }

    #[test]
    fn a_signed_link_verifies_and_names_ticket_and_person() {
        let token = sign(&key(KEY), &claims());
        assert_eq!(verify(&key(KEY), &token, NOW), Ok(claims()));
        assert!(!token.contains('/') && !token.contains('+') && !token.contains('='));
    }

    #[test]
    fn refusals_table() {
        let good = sign(&key(KEY), &claims());
        let (payload, signature) = good.rsplit_once('.').unwrap();
        // Another ticket's id under this ticket's signature.
        let other_ticket = format!("{}.{signature}", payload.replacen(".42.", ".43.", 1));
        // Another person under the same signature.
        let other_person = format!(
            "{}.{signature}",
            payload.replace(
                &URL_SAFE_NO_PAD.encode("ana"),
                &URL_SAFE_NO_PAD.encode("eve")
            )
        );
        // A later expiry under the same signature.
        let later = format!(
            "{}.{signature}",
            payload.replace(&(NOW + 60_000).to_string(), &(NOW + 600_000).to_string())
        );
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let cases: Vec<(&str, String, &[u8], Millis, AckLinkError)> = vec![
            (
                "expired",
                good.clone(),
                KEY,
                NOW + 60_000,
                AckLinkError::Expired,
            ),
            (
                "other key",
                good.clone(),
                b"another key another key another k",
                NOW,
                AckLinkError::BadSignature,
            ),
            (
                "other ticket",
                other_ticket,
                KEY,
                NOW,
                AckLinkError::BadSignature,
            ),
            (
                "other person",
                other_person,
                KEY,
                NOW,
                AckLinkError::BadSignature,
            ),
            (
                "extended expiry",
                later,
                KEY,
                NOW,
                AckLinkError::BadSignature,
            ),
            (
                "flipped signature",
                flipped,
                KEY,
                NOW,
                AckLinkError::BadSignature,
            ),
            (
                "no signature",
                payload.to_string(),
                KEY,
                NOW,
                AckLinkError::Malformed,
            ),
            ("empty", String::new(), KEY, NOW, AckLinkError::Malformed),
            (
                "garbage",
                "v2.x.y.z.w".into(),
                KEY,
                NOW,
                AckLinkError::Malformed,
            ),
        ];
        for (what, token, key, now, want) in cases {
            assert_eq!(
                verify(&self::key(key), &token, now),
                Err(want),
                "{what}: {token}"
            );
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(AckKey::new(b"short").err(), Some(AckLinkError::ShortKey));
        assert!(AckKey::new(KEY).is_ok());
    }
}

//! WeCom, DingTalk and Feishu group robots (… → incidents → **notifications** → robots).
//!
//! Each robot gets a markdown message rendered from the channel's templates (defaults in
//! [`crate::template`]). DingTalk and Feishu robots with signing enabled get the
//! HMAC-SHA256 signature of `timestamp + "\n" + secret`, computed at each attempt because the
//! robots reject old timestamps. Robots answer HTTP 200 with an error code in the body; a
//! non-zero code is retried (rate limits are the usual cause) and logged with the robot's message.

use super::{
    Expect, HttpRequest, Prepared, Rejection, check_template, check_url, json_post, render,
    truncate,
};
use crate::model::Notification;
use crate::path::field;
use crate::template::{DEFAULT_MARKDOWN, DEFAULT_TITLE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use faultline_incidents::Millis;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;

/// Which robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotKind {
    /// WeCom (企业微信).
    WeCom,
    /// DingTalk (钉钉).
    DingTalk,
    /// Feishu / Lark (飞书).
    Feishu,
}

impl RobotKind {
    /// Name of the config table.
    pub fn as_str(self) -> &'static str {
        match self {
            RobotKind::WeCom => "wecom",
            RobotKind::DingTalk => "dingtalk",
            RobotKind::Feishu => "feishu",
        }
    }
}

/// `[notify.channels.wecom]`, `[notify.channels.dingtalk]` or `[notify.channels.feishu]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// The robot's webhook URL with its key or access token (kept secret).
    pub url: Secret,
    /// Signing secret of a DingTalk (`SEC…`) or Feishu robot with signing enabled. WeCom robots
    /// have no signing.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Title template (DingTalk notification title, Feishu card header).
    #[serde(default = "default_title")]
    pub title: String,
    /// Markdown message template.
    #[serde(default = "default_markdown")]
    pub markdown: String,
}

fn default_title() -> String {
    DEFAULT_TITLE.to_string()
}

fn default_markdown() -> String {
    DEFAULT_MARKDOWN.to_string()
}

/// WeCom's limit on markdown content, in bytes.
const WECOM_MAX_BYTES: usize = 4096;

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk's signature: base64(HMAC-SHA256(key = secret, message = `{ms}\n{secret}`)).
pub fn dingtalk_sign(secret: &str, timestamp_ms: Millis) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    hmac_base64(secret.as_bytes(), message.as_bytes())
}

/// Feishu's signature: base64(HMAC-SHA256(key = `{seconds}\n{secret}`, empty message)).
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    hmac_base64(key.as_bytes(), b"")
}

impl RobotConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(
        &self,
        kind: RobotKind,
        source: &ConfigSource,
        prefix: &str,
    ) -> Result<(), ConfigError> {
        check_url(source, &field(prefix, "url"), self.url.expose())?;
        if kind == RobotKind::WeCom && self.secret.is_some() {
            return Err(source.error(
                &field(prefix, "secret"),
                "WeCom robots have no signing secret",
            ));
        }
        check_template(source, &field(prefix, "title"), &self.title)?;
        check_template(source, &field(prefix, "markdown"), &self.markdown)
    }

    /// The message body for `kind`, signed at `now_ms` when a secret is set; returns the URL
    /// (DingTalk signs in the query) and the JSON body. DingTalk @-mentions the `mobiles` of the
    /// paged engineers; WeCom and Feishu markdown can only mention their own user ids, so they
    /// mention nobody.
    pub fn payload(
        &self,
        kind: RobotKind,
        title: &str,
        markdown: &str,
        mobiles: &[&str],
        now_ms: Millis,
    ) -> Result<(String, Value), Rejection> {
        let secret = self.secret.as_ref().map(Secret::expose);
        let mut url = self.url.expose().to_string();
        let body = match kind {
            RobotKind::WeCom => json!({
                "msgtype": "markdown",
                "markdown": { "content": truncate(markdown, WECOM_MAX_BYTES) },
            }),
            RobotKind::DingTalk => {
                if let Some(secret) = secret {
                    let mut parsed = reqwest::Url::parse(&url)
                        .map_err(|e| Rejection::permanent(format!("robot URL: {e}")))?;
                    parsed
                        .query_pairs_mut()
                        .append_pair("timestamp", &now_ms.to_string())
                        .append_pair("sign", &dingtalk_sign(secret, now_ms));
                    url = parsed.to_string();
                }
                // DingTalk highlights a mention only when the text carries `@<mobile>` too.
                let mut text = markdown.to_string();
                if !mobiles.is_empty() {
                    let at: Vec<String> = mobiles.iter().map(|m| format!("@{m}")).collect();
                    text = format!("{text}\n\n{}", at.join(" "));
                }
                json!({
                    "msgtype": "markdown",
                    "markdown": { "title": title, "text": text },
                    "at": { "atMobiles": mobiles, "isAtAll": false },
                })
            }
            RobotKind::Feishu => {
                let mut body = json!({
                    "msg_type": "interactive",
                    "card": {
                        "header": { "title": { "tag": "plain_text", "content": title } },
                        "elements": [ { "tag": "markdown", "content": markdown } ],
                    },
                });
                if let Some(secret) = secret {
                    let seconds = now_ms.div_euclid(1000);
                    body["timestamp"] = json!(seconds.to_string());
                    body["sign"] = json!(feishu_sign(secret, seconds));
                }
                body
            }
        };
        Ok((url, body))
    }

    pub(crate) fn request(
        &self,
        kind: RobotKind,
        notification: &Notification,
        context: &Value,
        key: &str,
        now_ms: Millis,
    ) -> Result<Prepared, Rejection> {
        let title = render(&self.title, context, "title")?;
        let markdown = render(&self.markdown, context, "markdown")?;
        let mobiles: Vec<&str> = notification
            .paged
            .iter()
            .filter_map(|c| c.phone.as_deref())
            .collect();
        let (url, body) = self.payload(kind, &title, &markdown, &mobiles, now_ms)?;
        let request: HttpRequest = json_post(url, &BTreeMap::new(), &body, key);
        let field = match kind {
            RobotKind::Feishu => "code",
            RobotKind::WeCom | RobotKind::DingTalk => "errcode",
        };
        Ok(Prepared::Http {
            request,
            expect: Expect::BodyCode { field },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(secret: Option<&str>) -> RobotConfig {
        RobotConfig {
            url: Secret::new("https://oapi.dingtalk.com/robot/send?access_token=TOKEN"),
            secret: secret.map(Secret::new),
            title: default_title(),
            markdown: default_markdown(),
        }
    }

    #[test]
    fn signatures_match_reference_values() {
        // Reference values computed with Python's hmac/hashlib/base64.
        assert_eq!(
            dingtalk_sign("SECabc123", 1_700_000_000_000),
            "N5P09a4+p1AMJIJWnIvQd2Yxw9+fu/oEBnPrjCcsLXk="
        );
        assert_eq!(
            feishu_sign("SECabc123", 1_700_000_000),
            "UqhI0v4zAkSwI4hNYBuHQvnrAqshA0UaeBGHCUMPX70="
        );
    }

    #[test]
    fn payload_shapes() {
        let now = 1_700_000_000_000;
        // (kind, secret, url suffix, JSON pointer into the body, expected value)
        let cases = [
            (
                RobotKind::WeCom,
                None,
                "access_token=TOKEN",
                "/msgtype",
                "markdown",
            ),
            (
                RobotKind::WeCom,
                None,
                "access_token=TOKEN",
                "/markdown/content",
                "MD",
            ),
            (
                RobotKind::DingTalk,
                None,
                "access_token=TOKEN",
                "/markdown/title",
                "T",
            ),
            (
                RobotKind::DingTalk,
                Some("SECabc123"),
                "&timestamp=1700000000000&sign=N5P09a4%2Bp1AMJIJWnIvQd2Yxw9%2Bfu%2FoEBnPrjCcsLXk%3D",
                "/markdown/text",
                "MD",
            ),
            (
                RobotKind::Feishu,
                None,
                "access_token=TOKEN",
                "/msg_type",
                "interactive",
            ),
            (
                RobotKind::Feishu,
                None,
                "access_token=TOKEN",
                "/card/elements/0/content",
                "MD",
            ),
            (
                RobotKind::Feishu,
                Some("SECabc123"),
                "access_token=TOKEN",
                "/sign",
                "UqhI0v4zAkSwI4hNYBuHQvnrAqshA0UaeBGHCUMPX70=",
            ),
            (
                RobotKind::Feishu,
                Some("SECabc123"),
                "access_token=TOKEN",
                "/timestamp",
                "1700000000",
            ),
        ];
        for (kind, secret, suffix, pointer, want) in cases {
            let (url, body) = robot(secret).payload(kind, "T", "MD", &[], now).unwrap();
            assert!(url.ends_with(suffix), "{kind:?}: {url}");
            assert_eq!(
                body.pointer(pointer),
                Some(&json!(want)),
                "{kind:?} {pointer}: {body}"
            );
        }
        let (_, body) = robot(None)
            .payload(RobotKind::DingTalk, "T", "MD", &["13800000000"], now)
            .unwrap();
        assert_eq!(body["at"]["atMobiles"], json!(["13800000000"]));
        assert_eq!(body["markdown"]["text"], "MD\n\n@13800000000");
        let long = "字".repeat(2000);
        let (_, body) = robot(None)
            .payload(RobotKind::WeCom, "T", &long, &[], now)
            .unwrap();
        let content = body["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= WECOM_MAX_BYTES && content.ends_with('…'));
    }
}

//! A ticket system driven by HTTP templates: Jira, ServiceNow and the like
//! (… → incidents → **notifications** → ticket sink).
//!
//! The first notification of a ticket (its trigger — or its carrier report, for a carrier's
//! portal that takes only `carrier_report`) renders `create`; the remote ticket's id is
//! read from the response at `id_pointer` and stored with the delivery in the same transaction.
//! Every later notification of the ticket renders `update` (or `resolve`) with `{{ remote_id }}`,
//! so it reaches that same remote ticket. A re-opened ticket updates its remote ticket too. A
//! create whose response arrived is never retried: if the id cannot be read, the delivery fails
//! permanently instead of creating a second remote ticket. A create whose response was lost (a
//! timeout) may have created the ticket all the same: with a `find` request configured, a retried
//! create first searches for the ticket by the dedup key and adopts it when found.

use super::{
    Expect, HttpRequest, Prepared, Rejection, check_body, check_headers, check_url,
    default_content_type, http_request, render, render_body,
};
use crate::model::{Kind, Notification};
use crate::path::field;
use crate::template;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One templated request of the ticket sink.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkRequest {
    /// HTTP method (default `POST`).
    #[serde(default = "default_method")]
    pub method: String,
    /// URL template; `{{ remote_id }}` is the remote ticket's id (in `update` and `resolve`).
    pub url: String,
    /// Body template (use `| tojson` to put text into JSON safely).
    pub body: String,
    /// Content type of the body (default `application/json`; a JSON body must render as JSON).
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

fn default_method() -> String {
    "POST".to_string()
}

fn default_find_method() -> String {
    "GET".to_string()
}

/// A search for the remote ticket of a dedup key, used before a retried create.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFind {
    /// HTTP method (default `GET`).
    #[serde(default = "default_find_method")]
    pub method: String,
    /// URL template searching by something the create body carries, such as
    /// `…/search?jql=labels%3D{{ dedup_key }}`.
    pub url: String,
    /// JSON pointer to the found ticket's id (`/issues/0/key`); nothing there means not found.
    pub id_pointer: String,
}

fn check_method(source: &ConfigSource, at: &str, method: &str) -> Result<Method, ConfigError> {
    parse_method(method).map_err(|e| source.error(at, e))
}

fn parse_method(method: &str) -> Result<Method, String> {
    Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))
}

/// Checks a URL template: it renders against the sample to an http(s) URL.
fn check_url_template(source: &ConfigSource, at: &str, url: &str) -> Result<(), ConfigError> {
    let context = template::context(&template::sample(), "check", Some("REMOTE-1"));
    let url = render(url, &context, "url").map_err(|r| source.error(at, r.message))?;
    check_url(source, at, &url)
}

fn check_pointer(source: &ConfigSource, at: &str, pointer: &str) -> Result<(), ConfigError> {
    if pointer.starts_with('/') {
        Ok(())
    } else {
        Err(source.error(
            at,
            "must be a JSON pointer such as `/key` or `/result/sys_id`",
        ))
    }
}

/// `[notify.channels.ticket_sink]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSinkConfig {
    /// Headers sent with every request, such as `Authorization` (values are kept secret).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// JSON pointer to the remote ticket's id in the create response: `/key` for Jira,
    /// `/result/sys_id` for ServiceNow.
    pub id_pointer: String,
    /// Creates the remote ticket (`[notify.channels.ticket_sink.create]`).
    pub create: SinkRequest,
    /// Adds an event to the remote ticket.
    pub update: SinkRequest,
    /// Resolves the remote ticket; `update` is used when unset.
    #[serde(default)]
    pub resolve: Option<SinkRequest>,
    /// Searches for the remote ticket before a create is retried, so a create whose response was
    /// lost does not make a second ticket. Strongly advised; without it such a retry creates again.
    #[serde(default)]
    pub find: Option<SinkFind>,
}

impl SinkRequest {
    fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_method(source, &field(prefix, "method"), &self.method)?;
        check_url_template(source, &field(prefix, "url"), &self.url)?;
        check_body(
            source,
            &field(prefix, "body"),
            &self.body,
            &self.content_type,
        )
    }

    fn build(
        &self,
        headers: &BTreeMap<String, Secret>,
        context: &Value,
        key: &str,
    ) -> Result<HttpRequest, Rejection> {
        let method = parse_method(&self.method).map_err(Rejection::permanent)?;
        let url = render(&self.url, context, "url")?;
        let body = render_body(&self.body, context, &self.content_type, "body")?;
        Ok(http_request(
            method,
            url,
            headers,
            &self.content_type,
            body,
            key,
        ))
    }
}

impl SinkFind {
    fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_method(source, &field(prefix, "method"), &self.method)?;
        check_url_template(source, &field(prefix, "url"), &self.url)?;
        check_pointer(source, &field(prefix, "id_pointer"), &self.id_pointer)
    }

    fn build(
        &self,
        headers: &BTreeMap<String, Secret>,
        context: &Value,
        key: &str,
    ) -> Result<HttpRequest, Rejection> {
        let method = parse_method(&self.method).map_err(Rejection::permanent)?;
        let url = render(&self.url, context, "find url")?;
        Ok(http_request(
            method,
            url,
            headers,
            "application/json",
            Vec::new(),
            key,
        ))
    }
}

impl TicketSinkConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        check_headers(source, prefix, &self.headers)?;
        check_pointer(source, &field(prefix, "id_pointer"), &self.id_pointer)?;
        self.create.validate(source, &field(prefix, "create"))?;
        self.update.validate(source, &field(prefix, "update"))?;
        if let Some(resolve) = &self.resolve {
            resolve.validate(source, &field(prefix, "resolve"))?;
        }
        if let Some(find) = &self.find {
            find.validate(source, &field(prefix, "find"))?;
        }
        Ok(())
    }

    /// Create when there is no remote ticket yet (searching first when a create is retried and
    /// `find` is set), else update (or resolve) that ticket.
    pub(crate) fn request(
        &self,
        notification: &Notification,
        context: &Value,
        key: &str,
        remote_id: Option<&str>,
        attempts: u32,
    ) -> Result<Prepared, Rejection> {
        let http = |request| Prepared::Http {
            request,
            expect: Expect::Status,
        };
        match (remote_id, notification.kind) {
            (_, Kind::FollowUp) => Ok(Prepared::Skip(
                "a customer follow-up is no ticket event: nothing to create or update".into(),
            )),
            (None, Kind::Trigger | Kind::Reopen | Kind::CarrierReport) => {
                let create = self.create.build(&self.headers, context, key)?;
                match &self.find {
                    Some(find) if attempts > 0 => Ok(Prepared::Lookup {
                        find: find.build(&self.headers, context, key)?,
                        find_pointer: find.id_pointer.clone(),
                        create,
                        id_pointer: self.id_pointer.clone(),
                    }),
                    _ => Ok(Prepared::Http {
                        request: create,
                        expect: Expect::RemoteId {
                            pointer: self.id_pointer.clone(),
                        },
                    }),
                }
            }
            (None, kind) => Err(Rejection::permanent(format!(
                "no remote ticket for {} to send `{kind}` to: its trigger was not delivered here",
                notification.dedup_key
            ))),
            (Some(_), Kind::Resolve) => self
                .resolve
                .as_ref()
                .unwrap_or(&self.update)
                .build(&self.headers, context, key)
                .map(http),
            (Some(_), _) => self.update.build(&self.headers, context, key).map(http),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{context, sample};

    fn sink() -> TicketSinkConfig {
        toml::from_str(
            r#"
id_pointer = "/key"
headers = { Authorization = "Basic QQ==" }
[create]
url = "http://127.0.0.1:9/rest/issue"
body = '{"summary": {{ summary | tojson }}, "priority": "{{ severity }}"}'
[update]
method = "put"
url = "http://127.0.0.1:9/rest/issue/{{ remote_id }}"
body = '{"comment": {{ details | tojson }}}'
[resolve]
url = "http://127.0.0.1:9/rest/issue/{{ remote_id }}/transitions"
body = '{"transition": "done"}'
[find]
url = "http://127.0.0.1:9/rest/search?jql=labels%3D{{ dedup_key }}"
id_pointer = "/issues/0/key"
"#,
        )
        .unwrap()
    }

    #[test]
    fn create_then_update_then_resolve() {
        // (kind, remote id, expected method, URL suffix, expect, or None for an error)
        let cases = [
            (Kind::Trigger, None, Some(("POST", "/rest/issue", true))),
            (Kind::Progress, None, None),
            (
                Kind::CarrierReport,
                None,
                Some(("POST", "/rest/issue", true)),
            ),
            (
                Kind::Trigger,
                Some("OPS-9"),
                Some(("PUT", "/rest/issue/OPS-9", false)),
            ),
            (
                Kind::Progress,
                Some("OPS-9"),
                Some(("PUT", "/rest/issue/OPS-9", false)),
            ),
            (
                Kind::Resolve,
                Some("OPS-9"),
                Some(("POST", "/rest/issue/OPS-9/transitions", false)),
            ),
        ];
        for (kind, remote, want) in cases {
            let mut n = sample();
            n.kind = kind;
            let got = sink().request(&n, &context(&n, "jira", remote), "k", remote, 0);
            match (got, want) {
                (Err(r), None) => assert_eq!(r.failure, crate::retry::Failure::Permanent),
                (Ok(Prepared::Http { request, expect }), Some((method, suffix, creates))) => {
                    assert_eq!(request.method.as_str(), method, "{kind}");
                    assert!(request.url.ends_with(suffix), "{kind}: {}", request.url);
                    assert_eq!(matches!(expect, Expect::RemoteId { .. }), creates, "{kind}");
                    assert!(request.json().is_some());
                }
                (got, want) => panic!("{kind}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn a_retried_create_searches_first() {
        let n = sample();
        let got = sink().request(&n, &context(&n, "jira", None), "k", None, 1);
        let Ok(Prepared::Lookup {
            find,
            find_pointer,
            create,
            id_pointer,
        }) = got
        else {
            panic!("{got:?}")
        };
        assert_eq!(find.method, Method::GET);
        assert!(
            find.url
                .ends_with("/rest/search?jql=labels%3Dfaultline-ticket-1")
        );
        assert_eq!(
            (find_pointer.as_str(), id_pointer.as_str()),
            ("/issues/0/key", "/key")
        );
        assert_eq!(create.method, Method::POST);
        let mut without = sink();
        without.find = None;
        let got = without.request(&n, &context(&n, "jira", None), "k", None, 1);
        assert!(matches!(
            got,
            Ok(Prepared::Http {
                expect: Expect::RemoteId { .. },
                ..
            })
        ));
    }

    #[test]
    fn validation_checks_pointer_method_and_url() {
        let cases = [
            ("", None),
            ("s.id_pointer = \"key\"\n", Some("sink.id_pointer")),
            (
                "s.update.method = \"FROB LICATE\"\n",
                Some("sink.update.method"),
            ),
            ("s.update.url = \"{{ remote }}\"\n", Some("sink.update.url")),
            ("s.create.url = \"ftp://x/\"\n", Some("sink.create.url")),
        ];
        for (change, want) in cases {
            let mut s = sink();
            if let Some((path, value)) = change.split_once(" = ") {
                let value: String = toml::from_str::<toml::Value>(&format!("v = {value}")).unwrap()
                    ["v"]
                    .as_str()
                    .unwrap()
                    .to_string();
                match path {
                    "s.id_pointer" => s.id_pointer = value,
                    "s.update.method" => s.update.method = value,
                    "s.update.url" => s.update.url = value,
                    "s.create.url" => s.create.url = value,
                    other => panic!("{other}"),
                }
            }
            let source = ConfigSource::from_text(std::path::Path::new("c.toml"), String::new());
            let got = s.validate(&source, "sink").err().map(|e| e.field);
            assert_eq!(got.as_deref(), want, "{change}");
        }
    }
}

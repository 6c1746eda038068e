//! E-mail over SMTP with lettre (… → incidents → **notifications** → e-mail).
//!
//! Every notification goes to the unified ticket mailbox and to the engineers it pages; the kinds
//! listed in `customer_kinds` also go, as blind copies, to the affected customers' contacts. The `Message-ID` is derived
//! from the delivery (channel, dedup key, kind, occurrence), so a mail system can drop a retried
//! duplicate, and `References` ties all mails of one ticket into a thread. TLS goes through rustls
//! with the aws-lc-rs provider, like the rest of Faultline.

use super::{Prepared, Rejection, check_template, render};
use crate::config::field;
use crate::model::{Kind, Notification};
use crate::retry::Failure;
use crate::template::{DEFAULT_TEXT, DEFAULT_TITLE};
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on the same host or network; port 25).
    None,
}

/// `[notify.channels.email]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port; by default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// SMTP user name, if the server wants a login.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password (kept secret); required with `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender, such as `"Faultline <faultline@example.com>"`.
    pub from: String,
    /// The unified ticket mailbox: every notification of this channel goes there.
    #[serde(default)]
    pub mailbox: Vec<String>,
    /// Kinds also sent to the affected customers' contacts, as blind copies (default
    /// `["trigger", "reopen", "progress", "resolve"]`; empty never mails customers).
    #[serde(default = "default_customer_kinds")]
    pub customer_kinds: Vec<Kind>,
    /// Subject template.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Plain-text body template.
    #[serde(default = "default_body")]
    pub body: String,
}

fn default_customer_kinds() -> Vec<Kind> {
    vec![Kind::Trigger, Kind::Reopen, Kind::Progress, Kind::Resolve]
}

fn default_subject() -> String {
    DEFAULT_TITLE.to_string()
}

fn default_body() -> String {
    DEFAULT_TEXT.to_string()
}

/// One e-mail, before it becomes a lettre [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Sender.
    pub from: String,
    /// Visible recipients (the ticket mailbox, the paged engineers).
    pub to: Vec<String>,
    /// Blind copies (customer contacts).
    pub bcc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// `Message-ID`, unique per delivery.
    pub message_id: String,
    /// `References`: the ticket's thread.
    pub references: String,
}

impl EmailMessage {
    /// The lettre message; an unusable address is a permanent failure.
    pub fn to_lettre(&self) -> Result<Message, Rejection> {
        let mailbox = |address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| Rejection::permanent(format!("address `{address}`: {e}")))
        };
        let mut builder = Message::builder()
            .from(mailbox(&self.from)?)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .references(self.references.clone());
        for to in &self.to {
            builder = builder.to(mailbox(to)?);
        }
        for bcc in &self.bcc {
            builder = builder.bcc(mailbox(bcc)?);
        }
        builder
            .body(self.body.clone())
            .map_err(|e| Rejection::permanent(format!("e-mail: {e}")))
    }
}

/// Judges an SMTP error: the server's 5xx answers are permanent, all else is retried.
pub fn classify(error: &lettre::transport::smtp::Error) -> Failure {
    if error.is_permanent() {
        Failure::Permanent
    } else {
        Failure::Transient
    }
}

impl EmailConfig {
    /// Checks the table; `prefix` is where it sits.
    pub fn validate(&self, source: &ConfigSource, prefix: &str) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(source.error(&field(prefix, "host"), "must not be empty"));
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            return Err(source.error(&field(prefix, "from"), format!("not an address: {e}")));
        }
        for (i, address) in self.mailbox.iter().enumerate() {
            if let Err(e) = address.parse::<Mailbox>() {
                return Err(source.error(
                    &field(prefix, &format!("mailbox[{i}]")),
                    format!("not an address: {e}"),
                ));
            }
        }
        if self.mailbox.is_empty() && self.customer_kinds.is_empty() {
            return Err(source.error(
                &field(prefix, "mailbox"),
                "no recipients: set a mailbox or customer_kinds",
            ));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err(source.error(&field(prefix, "username"), "needs `password` too"));
            }
            (None, Some(_)) => {
                return Err(source.error(&field(prefix, "password"), "needs `username` too"));
            }
            _ => {}
        }
        check_template(source, &field(prefix, "subject"), &self.subject)?;
        check_template(source, &field(prefix, "body"), &self.body)
    }

    /// The port in use.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }

    /// The SMTP transport, with `timeout` per command.
    pub fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
        let builder = match self.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&self.host)?,
        };
        let mut builder = builder.port(self.port()).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(builder.build())
    }

    /// The e-mail for `notification`: the mailbox and the paged engineers always, customer
    /// contacts for `customer_kinds`, each address once; nothing to send without recipients.
    pub(crate) fn message(
        &self,
        channel: &str,
        notification: &Notification,
        context: &Value,
    ) -> Result<Prepared, Rejection> {
        let n = notification;
        let mut to = self.mailbox.clone();
        let paged = n.paged.iter().filter_map(|c| c.email.as_deref());
        for email in paged {
            if !to.iter().any(|t| t == email) {
                to.push(email.to_string());
            }
        }
        let mut bcc: Vec<String> = Vec::new();
        if self.customer_kinds.contains(&n.kind) {
            for email in n.contacts.iter().filter_map(|c| c.email.as_deref()) {
                if !bcc.iter().any(|b| b == email) && !to.iter().any(|t| t == email) {
                    bcc.push(email.to_string());
                }
            }
        }
        if to.is_empty() && bcc.is_empty() {
            return Ok(Prepared::Skip("no recipients".to_string()));
        }
        Ok(Prepared::Email(EmailMessage {
            from: self.from.clone(),
            to,
            bcc,
            subject: render(&self.subject, context, "subject")?,
            body: render(&self.body, context, "body")?,
            message_id: format!(
                "<{channel}.{}.{}.{}@faultline>",
                n.dedup_key, n.kind, n.occurrence
            ),
            references: format!("<{}@faultline>", n.dedup_key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{context, sample};

    fn config(mailbox: &[&str]) -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: None,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Faultline <faultline@example.com>".into(),
            mailbox: mailbox.iter().map(|m| m.to_string()).collect(),
            customer_kinds: default_customer_kinds(),
            subject: default_subject(),
            body: default_body(),
        }
    }

    #[test]
    fn recipients_table() {
        // (mailbox, kind, paged, expected to count, expected bcc; None = skipped)
        type Case<'a> = (&'a [&'a str], Kind, bool, Option<(usize, Vec<&'a str>)>);
        let cases: Vec<Case<'_>> = vec![
            (
                &["noc@example.com"],
                Kind::Trigger,
                false,
                Some((1, vec!["li@example.com"])),
            ),
            (
                &["noc@example.com"],
                Kind::Trigger,
                true,
                Some((2, vec!["li@example.com"])),
            ),
            (
                &["noc@example.com"],
                Kind::Escalation,
                true,
                Some((2, vec![])),
            ),
            (
                &[],
                Kind::Progress,
                false,
                Some((0, vec!["li@example.com"])),
            ),
            (&[], Kind::Reminder, false, None),
            (&[], Kind::Reminder, true, Some((1, vec![]))),
            (&["li@example.com"], Kind::Resolve, false, Some((1, vec![]))),
            (
                &["ana@example.com"],
                Kind::Escalation,
                true,
                Some((1, vec![])),
            ),
        ];
        for (mailbox, kind, paged, want) in cases {
            let mut n = sample();
            n.kind = kind;
            if !paged {
                n.paged.clear();
            }
            let got = config(mailbox)
                .message("mail", &n, &context(&n, "mail", None))
                .unwrap();
            match (got, want) {
                (Prepared::Skip(_), None) => {}
                (Prepared::Email(m), Some((to, bcc))) => {
                    assert_eq!(
                        (m.to.len(), m.bcc.clone()),
                        (to, bcc.iter().map(|b| b.to_string()).collect()),
                        "{kind}"
                    );
                    assert_eq!(
                        m.message_id,
                        format!("<mail.faultline-ticket-1.{kind}.0@faultline>")
                    );
                    assert!(m.to_lettre().is_ok());
                }
                (got, want) => panic!("{kind}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn ports_follow_tls() {
        let mut c = config(&["noc@example.com"]);
        for (tls, port) in [
            (SmtpTls::Starttls, 587),
            (SmtpTls::Tls, 465),
            (SmtpTls::None, 25),
        ] {
            c.tls = tls;
            assert_eq!(c.port(), port);
        }
        c.port = Some(2525);
        assert_eq!(c.port(), 2525);
    }
}

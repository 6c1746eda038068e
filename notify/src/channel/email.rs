//! E-mail over SMTP with lettre (… → incidents → **notifications** → e-mail).
//!
//! Three audiences. Every notification goes to the unified ticket mailbox and to the engineers it
//! pages, written with the engineers' templates (the full reasoning and evidence). A carrier
//! report also goes to the carrier's NOC contacts, written by [`crate::carrier`]. The kinds
//! listed in `customer_kinds` also go to the affected customers' contacts — one message per
//! department, in its language, written by [`crate::customer`] from the customer view only (what
//! is affected, what is being done, the latest update for customers, the next update time), so
//! no internal reason or note ever reaches a customer. The `Message-ID` is derived from the
//! delivery (channel, dedup key, kind, occurrence, and the department for a customer message),
//! so a mail system can drop a retried duplicate, and `References` ties all mails of one ticket
//! into a thread. TLS goes through rustls
//! with the aws-lc-rs provider, like the rest of Faultline.

use super::{Prepared, Rejection, check_template, render};
use crate::model::{Kind, Notification};
use crate::path::field;
use crate::retry::Failure;
use crate::template::{DEFAULT_TEXT, DEFAULT_TITLE};
use crate::{carrier, customer};
use faultline_incidents::ticket::Customer;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use lettre::message::Mailbox;
use lettre::message::header::{HeaderName, HeaderValue};
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
    /// Kinds also sent to the affected customers' contacts, as separate customer messages (default
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
    /// Recipients: the ticket mailbox and the paged engineers, or one department's contacts.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// `Message-ID`, unique per delivery.
    pub message_id: String,
    /// `References`: the ticket's thread.
    pub references: String,
    /// `In-Reply-To`: the reporter's mail a reporter message answers.
    pub in_reply_to: Option<String>,
    /// `Auto-Submitted` (RFC 3834): `auto-replied` to a reporter, `auto-generated` otherwise, so
    /// no auto-responder answers and the repair mailbox recognises its own mail (with
    /// `X-Faultline-Ticket`, the ticket id).
    pub auto_submitted: &'static str,
    /// `X-Faultline-Ticket`: the ticket id (0 for a follow-up).
    pub ticket: u64,
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
            .references(self.references.clone())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                self.auto_submitted.to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Faultline-Ticket"),
                self.ticket.to_string(),
            ));
        if let Some(id) = &self.in_reply_to {
            builder = builder.in_reply_to(id.clone());
        }
        for to in &self.to {
            builder = builder.to(mailbox(to)?);
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
        if self.customer_kinds.contains(&Kind::CarrierReport) {
            return Err(source.error(
                &field(prefix, "customer_kinds"),
                "`carrier_report` goes to the carrier's NOC, never to customers",
            ));
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

    /// The e-mails for `notification`: the engineers' message to the mailbox and the paged
    /// engineers; for a carrier report the trouble report to the NOC contacts; for
    /// `customer_kinds` one customer message per affected department to its contacts among the
    /// notification's; nothing to send without recipients.
    pub(crate) fn message(
        &self,
        channel: &str,
        notification: &Notification,
        context: &Value,
    ) -> Result<Prepared, Rejection> {
        let n = notification;
        let id = format!("{channel}.{}.{}.{}", n.dedup_key, n.kind, n.occurrence);
        let references = format!("<{}@faultline>", n.dedup_key);
        let mut messages = Vec::new();
        let mut to = self.mailbox.clone();
        for email in n.paged.iter().filter_map(|c| c.email.as_deref()) {
            if !to.iter().any(|t| t == email) {
                to.push(email.to_string());
            }
        }
        if !to.is_empty() {
            messages.push(EmailMessage {
                from: self.from.clone(),
                to,
                subject: render(&self.subject, context, "subject")?,
                body: render(&self.body, context, "body")?,
                message_id: format!("<{id}@faultline>"),
                references: references.clone(),
                in_reply_to: None,
                auto_submitted: "auto-generated",
                ticket: n.ticket_id,
            });
        }
        if n.kind == Kind::CarrierReport {
            let noc: Vec<String> = n.contacts.iter().filter_map(|c| c.email.clone()).collect();
            if !noc.is_empty() {
                messages.push(EmailMessage {
                    from: self.from.clone(),
                    to: noc,
                    subject: render(carrier::SUBJECT, context, "carrier subject")?,
                    body: render(carrier::BODY, context, "carrier body")?,
                    message_id: format!("<{id}.carrier@faultline>"),
                    references: references.clone(),
                    in_reply_to: None,
                    auto_submitted: "auto-generated",
                    ticket: n.ticket_id,
                });
            }
        } else if self.customer_kinds.contains(&n.kind) {
            for (customer, to) in customer_groups(n) {
                let context = customer::context(n, &customer);
                messages.push(EmailMessage {
                    from: self.from.clone(),
                    to,
                    subject: render(customer::SUBJECT, &context, "customer subject")?,
                    body: render(customer::body(customer.language), &context, "customer body")?,
                    message_id: format!("<{id}.{}@faultline>", customer.department),
                    references: references.clone(),
                    in_reply_to: None,
                    auto_submitted: "auto-generated",
                    ticket: n.ticket_id,
                });
            }
            if let Some(message) = self.reporter_message(n, &id, &references)? {
                messages.push(message);
            }
        }
        if messages.is_empty() {
            return Ok(Prepared::Skip("no recipients".to_string()));
        }
        Ok(Prepared::Email(messages))
    }
}

impl EmailConfig {
    /// The message to the reporter of `n`'s ticket (mailbox, phone, walk-in), when they have an
    /// address: the customer wording in their department's language, `[FL-<id>]` in the subject
    /// (replies thread back to the ticket), answering their mail (`In-Reply-To`, `References`).
    fn reporter_message(
        &self,
        n: &Notification,
        id: &str,
        references: &str,
    ) -> Result<Option<EmailMessage>, Rejection> {
        let Some(reporter) = &n.reporter else {
            return Ok(None);
        };
        let Some(email) = reporter.email.clone() else {
            return Ok(None);
        };
        let customer = n
            .customer
            .departments
            .iter()
            .find(|c| Some(&c.department) == reporter.department.as_ref())
            .cloned()
            .unwrap_or_else(|| Customer {
                department: if reporter.name.is_empty() {
                    email.clone()
                } else {
                    reporter.name.clone()
                },
                ..Customer::default()
            });
        let context = customer::context(n, &customer);
        let subject = render(customer::SUBJECT, &context, "reporter subject")?;
        let (in_reply_to, references) = match &reporter.message_id {
            Some(original) => (Some(original.clone()), format!("{original} {references}")),
            None => (None, references.to_string()),
        };
        Ok(Some(EmailMessage {
            from: self.from.clone(),
            to: vec![email],
            subject: format!("[FL-{}] {subject}", n.ticket_id),
            body: render(customer::body(customer.language), &context, "reporter body")?,
            message_id: format!("<{id}.reporter@faultline>"),
            references,
            in_reply_to,
            auto_submitted: "auto-replied",
            ticket: n.ticket_id,
        }))
    }
}

/// The departments `n` tells, each with its addresses among `n.contacts` (the contacts the event
/// is for); contacts of no known department form one group of their own.
fn customer_groups(n: &Notification) -> Vec<(Customer, Vec<String>)> {
    let wanted: Vec<&str> = n
        .contacts
        .iter()
        .filter_map(|c| c.email.as_deref())
        .collect();
    let mut covered: Vec<&str> = Vec::new();
    let mut groups = Vec::new();
    for department in &n.customer.departments {
        let mut to: Vec<String> = Vec::new();
        for email in department
            .contacts
            .iter()
            .filter_map(|c| c.email.as_deref())
        {
            if wanted.contains(&email) && !to.iter().any(|t| t == email) {
                to.push(email.to_string());
                covered.push(email);
            }
        }
        if !to.is_empty() {
            groups.push((department.clone(), to));
        }
    }
    let mut rest: Vec<String> = Vec::new();
    for email in wanted {
        if !covered.contains(&email) && !rest.iter().any(|r| r == email) {
            rest.push(email.to_string());
        }
    }
    if !rest.is_empty() {
        let unknown = Customer {
            department: "customer".into(),
            contacts: n.contacts.clone(),
            ..Customer::default()
        };
        groups.push((unknown, rest));
    }
    groups
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
        // (mailbox, kind, paged, expected engineers' recipients count, expected customer
        // recipients; None = skipped)
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
            (
                &["li@example.com"],
                Kind::Resolve,
                false,
                Some((1, vec!["li@example.com"])),
            ),
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
                (Prepared::Email(messages), Some((to, customers))) => {
                    let engineers_id = format!("<mail.faultline-ticket-1.{kind}.0@faultline>");
                    let engineers = messages.iter().find(|m| m.message_id == engineers_id);
                    assert_eq!(engineers.map_or(0, |m| m.to.len()), to, "{kind}");
                    let customer: Vec<&str> = messages
                        .iter()
                        .filter(|m| m.message_id != engineers_id)
                        .flat_map(|m| m.to.iter().map(String::as_str))
                        .collect();
                    assert_eq!(customer, customers, "{kind}");
                    for m in &messages {
                        assert!(m.to_lettre().is_ok());
                        if m.message_id != engineers_id {
                            assert!(!m.body.contains(&n.reason), "{}", m.body);
                            assert_eq!(
                                m.message_id,
                                format!("<mail.faultline-ticket-1.{kind}.0.customer@faultline>")
                            );
                        }
                    }
                }
                (got, want) => panic!("{kind}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn a_carrier_report_goes_to_the_noc_with_the_ticket_token_and_evidence() {
        use faultline_incidents::inventory::Contact;
        use faultline_incidents::ticket::CarrierReport;
        let mut n = sample();
        n.kind = Kind::CarrierReport;
        n.paged.clear();
        n.contacts = vec![Contact {
            name: "ACME NOC".into(),
            email: Some("noc@acme.example".into()),
            phone: None,
        }];
        n.carrier = Some(CarrierReport {
            circuit: "acme-1".into(),
            carrier: "ACME Telecom".into(),
            circuit_id: "ACME-SH-0042".into(),
            a_end: "edge1-wan".into(),
            z_end: "ACME POP 3".into(),
            contacts: n.contacts.clone(),
            evidence: vec!["Our side edge1: no fault of its own".into()],
        });
        let Prepared::Email(messages) = config(&["desk@example.com"])
            .message("mail", &n, &context(&n, "mail", None))
            .unwrap()
        else {
            panic!("nothing to send");
        };
        let to: Vec<&[String]> = messages.iter().map(|m| m.to.as_slice()).collect();
        assert_eq!(
            to,
            [
                ["desk@example.com".to_string()],
                ["noc@acme.example".to_string()]
            ],
            "the desk's copy and the NOC's report; never the customers"
        );
        let noc = &messages[1];
        assert!(noc.subject.starts_with("[FL-1] "), "{}", noc.subject);
        for wanted in ["ACME-SH-0042", "edge1-wan", "ACME POP 3", "Our side edge1"] {
            assert!(noc.body.contains(wanted), "{wanted}: {}", noc.body);
        }
        assert!(
            !noc.body.contains(&n.reason),
            "no internal reason: {}",
            noc.body
        );
        assert!(noc.to_lettre().is_ok());
        // Without NOC addresses only the desk's copy goes out.
        n.contacts.clear();
        let Prepared::Email(messages) = config(&["desk@example.com"])
            .message("mail", &n, &context(&n, "mail", None))
            .unwrap()
        else {
            panic!("nothing to send");
        };
        assert_eq!(messages.len(), 1);
    }

    #[test]
    fn the_reporter_gets_the_customer_kinds_as_replies_to_their_mail_marked_automatic() {
        let mut n = sample();
        n.reporter = Some(faultline_incidents::ticket::Reporter {
            name: "Wang Fang".into(),
            email: Some("wang@finance.gov.example".into()),
            message_id: Some("<report-1@finance.gov.example>".into()),
            ..Default::default()
        });
        for (kind, want) in [
            (Kind::Trigger, true),
            (Kind::Resolve, true),
            (Kind::Escalation, false),
        ] {
            n.kind = kind;
            let Prepared::Email(messages) = config(&["noc@example.com"])
                .message("mail", &n, &context(&n, "mail", None))
                .unwrap()
            else {
                panic!("{kind}: nothing to send");
            };
            let reporter = messages
                .iter()
                .find(|m| m.to == ["wang@finance.gov.example"]);
            assert_eq!(reporter.is_some(), want, "{kind}");
            for m in &messages {
                let text = String::from_utf8(m.to_lettre().unwrap().formatted()).unwrap();
                assert!(text.contains("X-Faultline-Ticket: 1"), "{text}");
                assert!(text.contains("Auto-Submitted: auto-"), "{text}");
            }
            let Some(m) = reporter else { continue };
            assert!(m.subject.starts_with("[FL-1] "), "{}", m.subject);
            assert_eq!(
                m.in_reply_to.as_deref(),
                Some("<report-1@finance.gov.example>")
            );
            assert_eq!(m.auto_submitted, "auto-replied");
            let text = String::from_utf8(m.to_lettre().unwrap().formatted()).unwrap();
            assert!(
                text.contains("In-Reply-To: <report-1@finance.gov.example>"),
                "{text}"
            );
            assert!(
                !m.body.contains(&n.reason),
                "no internal reason: {}",
                m.body
            );
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

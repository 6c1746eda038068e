//! The management report as an e-mail (report → **notifications** → e-mail): the HTML page as
//! the body (with a plain-text alternative) and the CSV attached, sent through the SMTP server and
//! sender of an `[[notify.channels]]` e-mail channel ([`EmailConfig::transport`]). Not part of the
//! ticket outbox: the collector's report scheduler sends it once per period and records that.

use crate::channel::email::EmailConfig;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::{AsyncTransport, Message};
use std::time::Duration;

/// A report mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMail {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text alternative (the headline figures).
    pub text: String,
    /// The self-contained HTML page.
    pub html: String,
    /// The CSV attachment's file name.
    pub csv_name: String,
    /// The CSV.
    pub csv: String,
    /// `Message-ID` (one per report period, so a mail system can drop a resent duplicate).
    pub message_id: String,
}

/// The index and problem of the first recipient that is not an address.
pub fn check_recipients(to: &[String]) -> Result<(), (usize, String)> {
    for (i, address) in to.iter().enumerate() {
        if let Err(e) = address.parse::<Mailbox>() {
            return Err((i, format!("not an address: {e}")));
        }
    }
    Ok(())
}

impl ReportMail {
    /// The lettre message from `from`.
    pub fn to_lettre(&self, from: &str) -> Result<Message, String> {
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("address `{a}`: {e}"))
        };
        let mut builder = Message::builder()
            .from(mailbox(from)?)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()));
        for to in &self.to {
            builder = builder.to(mailbox(to)?);
        }
        let csv = ContentType::parse("text/csv; charset=utf-8").map_err(|e| e.to_string())?;
        builder
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(
                        self.text.clone(),
                        self.html.clone(),
                    ))
                    .singlepart(Attachment::new(self.csv_name.clone()).body(self.csv.clone(), csv)),
            )
            .map_err(|e| format!("e-mail: {e}"))
    }
}

/// Sends `mail` through `channel`'s SMTP server, from its sender, `timeout` per SMTP command.
pub async fn send(
    channel: &EmailConfig,
    mail: &ReportMail,
    timeout: Duration,
) -> Result<(), String> {
    let message = mail.to_lettre(&channel.from)?;
    let transport = channel.transport(timeout).map_err(|e| e.to_string())?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", channel.host, channel.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_html_text_and_csv_attachment() {
        let mail = ReportMail {
            to: vec!["cio@gov.example".into()],
            subject: "Faultline report 2026-11".into(),
            text: "Tickets: 12".into(),
            html: "<p>Tickets: 12</p>".into(),
            csv_name: "faultline-report-2026-11.csv".into(),
            csv: "section,department,item,value\n".into(),
            message_id: "<report.monthly.2026-11@faultline>".into(),
        };
        let text = String::from_utf8(
            mail.to_lettre("Faultline <f@example.com>")
                .unwrap()
                .formatted(),
        )
        .unwrap();
        for needle in [
            "Subject: Faultline report 2026-11",
            "To: cio@gov.example",
            "Content-Type: text/html",
            "Content-Type: text/plain",
            "Content-Type: text/csv",
            "filename=\"faultline-report-2026-11.csv\"",
            "Message-ID: <report.monthly.2026-11@faultline>",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        assert!(
            check_recipients(&["a@b.example".into(), "nope".into()]).is_err_and(|(i, _)| i == 1)
        );
    }
}

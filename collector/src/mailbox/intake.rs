//! What the mailbox asks of the incident stage (mailbox → **incidents**): one parsed,
//! non-automatic mail to turn into a ticket or a timeline entry, answered once it is committed
//! (only then is the mail flagged or moved on the server), what to do with a fetched mail
//! ([`triage`]), and the pure attachment caps.

use super::classify::{Automatic, automatic};
use super::parse::{IncomingMail, Part, Quarantine, parse};
use faultline_incidents::Owner;
use faultline_incidents::store::Attachment;
use faultline_incidents::ticket::AttachmentRef;

/// One mail for the incident stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIntake {
    /// The mail.
    pub mail: IncomingMail,
    /// Attachment size caps.
    pub caps: AttachmentCaps,
    /// The tag of a ticket opened by a known sender (`[mailbox] tag`); unknown senders' tickets
    /// are untagged.
    pub tag: Owner,
}

/// What to do with one fetched mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triage {
    /// Hand it to the incident stage; mark it done once it answered.
    Take(Box<MailIntake>),
    /// Automatic mail: mark it done, no ticket, no answer.
    Automatic {
        /// Its Message-ID.
        message_id: String,
        /// Which kind.
        kind: Automatic,
    },
    /// Move it to the quarantine folder.
    Quarantine(Quarantine),
}

/// Decides what becomes of the raw mail `raw` (pure): parsed with the size limit
/// `max_mail_bytes`, automatic mail told apart, the rest made a [`MailIntake`].
pub fn triage(raw: &[u8], max_mail_bytes: u64, caps: AttachmentCaps, tag: Owner) -> Triage {
    let max = usize::try_from(max_mail_bytes).unwrap_or(usize::MAX);
    match parse(raw, max) {
        Err(quarantine) => Triage::Quarantine(quarantine),
        Ok(mail) => match automatic(&mail) {
            Some(kind) => Triage::Automatic {
                message_id: mail.message_id,
                kind,
            },
            None => Triage::Take(Box::new(MailIntake { mail, caps, tag })),
        },
    }
}

/// What became of a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// It opened ticket `id`.
    Opened(u64),
    /// It was recorded on ticket `id` (a reply).
    Threaded(u64),
    /// It was taken in before (a re-fetch after a crash): ticket `id`.
    Duplicate(u64),
}

impl MailOutcome {
    /// The `result` label of `faultline_mailbox_mails_total`.
    pub fn label(self) -> &'static str {
        match self {
            MailOutcome::Opened(_) => "ticket",
            MailOutcome::Threaded(_) => "reply",
            MailOutcome::Duplicate(_) => "duplicate",
        }
    }
}

/// Attachment size caps (`[mailbox] max_attachment_bytes`, `max_attachments_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentCaps {
    /// Largest attachment kept.
    pub each: u64,
    /// Most bytes kept per mail.
    pub total: u64,
}

/// The attachments of a mail as listed on the ticket, and those kept (within both caps, in
/// order, numbered from `first`); the others are listed by name and size only.
pub fn keep(
    parts: &[Part],
    caps: AttachmentCaps,
    first: u32,
) -> (Vec<AttachmentRef>, Vec<Attachment>) {
    let mut listed = Vec::with_capacity(parts.len());
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    let mut number = first;
    for part in parts {
        let size = part.bytes.len() as u64;
        let fits = size <= caps.each && total.saturating_add(size) <= caps.total;
        let kept_as = fits.then(|| {
            total += size;
            kept.push(Attachment {
                number,
                name: part.name.clone(),
                content_type: part.content_type.clone(),
                bytes: part.bytes.clone(),
            });
            number += 1;
            number - 1
        });
        listed.push(AttachmentRef {
            number: kept_as,
            name: part.name.clone(),
            content_type: part.content_type.clone(),
            size,
        });
    }
    (listed, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_takes_quarantines_or_ignores_table() {
        let caps = AttachmentCaps {
            each: 10,
            total: 10,
        };
        let person = "From: li@example.com\r\nMessage-ID: <p@x>\r\nSubject: VPN\r\n\r\ndown\r\n";
        let bounce = "From: MAILER-DAEMON@mx.example\r\nMessage-ID: <b@x>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--z--\r\n";
        let cases: [(&str, &str, u64, &str); 4] = [
            ("a person", person, 1000, "take"),
            ("a bounce", bounce, 1000, "automatic"),
            ("too big", person, 10, "quarantine"),
            ("not a mail", "", 1000, "quarantine"),
        ];
        for (what, raw, max, want) in cases {
            let got = match triage(raw.as_bytes(), max, caps, Owner::Carrier) {
                Triage::Take(intake) => {
                    assert_eq!(
                        (intake.tag, intake.caps, intake.mail.subject.as_str()),
                        (Owner::Carrier, caps, "VPN"),
                        "{what}"
                    );
                    "take"
                }
                Triage::Automatic { message_id, kind } => {
                    assert_eq!((message_id.as_str(), kind), ("<b@x>", Automatic::Bounce));
                    "automatic"
                }
                Triage::Quarantine(_) => "quarantine",
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn attachments_are_kept_within_both_caps_and_listed_all() {
        let part = |name: &str, size: usize| Part {
            name: name.into(),
            content_type: "application/octet-stream".into(),
            bytes: vec![7; size],
        };
        let caps = AttachmentCaps {
            each: 10,
            total: 14,
        };
        let parts = [part("a", 8), part("big", 11), part("b", 7), part("c", 5)];
        let (listed, kept) = keep(&parts, caps, 3);
        let numbers: Vec<(&str, Option<u32>, u64)> = listed
            .iter()
            .map(|a| (a.name.as_str(), a.number, a.size))
            .collect();
        // `big` is over the per-attachment cap, `b` over the total left after `a`; `c` fits.
        assert_eq!(
            numbers,
            [
                ("a", Some(3), 8),
                ("big", None, 11),
                ("b", None, 7),
                ("c", Some(4), 5)
            ]
        );
        assert_eq!(kept.iter().map(|k| k.number).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(kept[1].bytes.len(), 5);
    }
}

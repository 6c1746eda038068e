//! Mails of the repair mailbox in the incident stage (mailbox → **incidents**): a new mail opens
//! a ticket (channel `mailbox`, the sender as its reporter), a reply is recorded on the ticket it
//! belongs to, a mail taken in before is answered with its ticket — the Message-ID is stored in
//! the same transaction as the ticket, so nothing is taken in twice. A reply from the NOC of the
//! carrier a ticket was reported to is also recorded as the carrier's response.

use super::MAILBOX_RULE;
use super::stage::Stage;
use super::store_refusal;
use crate::api::Refusal;
use crate::mailbox::classify::thread_of;
use crate::mailbox::intake::{MailIntake, MailOutcome, keep};
use faultline_incidents::carrier::CarrierClock;
use faultline_incidents::store::MailRecord;
use faultline_incidents::ticket::{AttachmentRef, Channel, Customer, MailReceived, Reporter};
use faultline_incidents::{Command, Millis, NewTicket, Severity, Ticket, TicketState};

/// Target of tickets from senders the inventory does not know.
pub const UNKNOWN_SENDER: &str = "mailbox:unknown";
/// Longest summary taken from a subject, in characters.
const SUMMARY_CHARS: usize = 200;

impl Stage {
    /// Takes in one mail: [`MailOutcome`] once committed.
    pub(super) fn take_mail(
        &mut self,
        intake: &MailIntake,
        now: Millis,
    ) -> Result<MailOutcome, Refusal> {
        let mail = &intake.mail;
        let store = &self.book.store;
        if let Some(id) = store.mail_ticket(&mail.message_id).map_err(store_refusal)? {
            return Ok(MailOutcome::Duplicate(id));
        }
        let mut thread = thread_of(&mail.references, &mail.subject)
            .filter(|id| matches!(store.get(*id), Ok(Some(_))));
        for reference in &mail.references {
            if thread.is_some() {
                break;
            }
            thread = store.mail_ticket(reference).map_err(store_refusal)?;
        }
        let first = match thread {
            Some(id) => store.attachment_count(id).map_err(store_refusal)? + 1,
            None => 1,
        };
        let (listed, kept) = keep(&mail.attachments, intake.caps, first);
        let record = MailRecord {
            message_id: &mail.message_id,
            at_ms: now,
            attachments: &kept,
        };
        if let Some(id) = thread {
            let command = Command::RecordMail(Box::new(MailReceived {
                from: mail.from.clone(),
                subject: mail.subject.clone(),
                text: mail.text.clone(),
                message_id: mail.message_id.clone(),
                attachments: listed,
            }));
            let ticket = self
                .book
                .change_ticket_with(id, command, Some(&record), now)?;
            self.carrier_answered(&ticket, &mail.from, &mail.subject, now);
            return Ok(MailOutcome::Threaded(id));
        }
        let inventory = &self.setup.inventory;
        let sender = inventory.sender(&mail.from);
        let (target, tag, reason, customers, department) = match sender {
            Some((department, contact)) => (
                format!("department:{}", department.id),
                Some(intake.tag),
                format!(
                    "mailed by {} of {}; tagged {} by [mailbox] tag",
                    contact.map_or(mail.from.as_str(), |c| c.name.as_str()),
                    department.id,
                    intake.tag
                ),
                vec![Customer {
                    department: department.id.clone(),
                    vip: inventory.is_vip(&department.id),
                    // The reporter hears of it; the department's other contacts are not mailed.
                    contacts: Vec::new(),
                    language: department.language,
                    targets: Vec::new(),
                }],
                Some(department.id.clone()),
            ),
            None => (
                UNKNOWN_SENDER.to_string(),
                None,
                format!(
                    "mailed by {}, a sender of no department: waiting for triage",
                    mail.from
                ),
                Vec::new(),
                None,
            ),
        };
        let subject = if mail.subject.is_empty() {
            "(no subject)"
        } else {
            mail.subject.as_str()
        };
        let new = NewTicket {
            rule: MAILBOX_RULE.to_string(),
            target,
            summary: subject.chars().take(SUMMARY_CHARS).collect(),
            description: describe(&mail.text, &listed),
            severity: Severity::P3,
            tag,
            reason,
            evidence: None,
            customers,
            started_at_ms: now,
            opened_by: mail.from.clone(),
            channel: Channel::Mailbox,
            pages: true,
            reporter: Some(Reporter {
                name: mail.from_name.clone(),
                email: Some(mail.from.clone()),
                phone: None,
                department,
                message_id: Some(mail.message_id.clone()),
            }),
        };
        let ticket = self.book.create_ticket_with(new, Some(&record), now)?;
        Ok(MailOutcome::Opened(ticket.id))
    }
}

/// The ticket description of a mail: its text, then its attachments (kept ones with their
/// number for `GET /api/v1/tickets/{id}/attachments/{n}`).
impl Stage {
    /// A mail threaded into a ticket reported to a carrier, from that carrier's NOC, is the
    /// carrier's response: it is recorded as one ([`CarrierClock`] takes the first as the end
    /// of the carrier's response time).
    fn carrier_answered(&mut self, ticket: &Ticket, from: &str, subject: &str, now: Millis) {
        let Some(clock) = CarrierClock::of(ticket) else {
            return;
        };
        let from_noc = clock
            .report
            .contacts
            .iter()
            .filter_map(|c| c.email.as_deref())
            .any(|noc| noc.eq_ignore_ascii_case(from));
        if !from_noc || ticket.state == TicketState::Closed {
            return;
        }
        let command = Command::RecordCarrierResponse {
            by: from.to_string(),
            reference: None,
            note: format!("by mail: {subject}"),
        };
        if let Err(refusal) = self.book.change_ticket(ticket.id, command, now) {
            self.book.automatic_failed(ticket.id, &refusal);
        }
    }
}

fn describe(text: &str, attachments: &[AttachmentRef]) -> String {
    let mut out = text.to_string();
    if !attachments.is_empty() {
        out.push_str("\n\nAttachments:");
        for a in attachments {
            let kept = a.number.map_or_else(
                || "over the size cap, not kept".to_string(),
                |n| format!("#{n}"),
            );
            out.push_str(&format!(
                "\n- {} ({}, {} bytes): {kept}",
                a.name, a.content_type, a.size
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::stage::tests::stage_with_inventory;
    use crate::mailbox::intake::AttachmentCaps;
    use crate::mailbox::parse::{IncomingMail, Part};
    use faultline_incidents::store::test_db::Db;
    use faultline_incidents::{Change, Owner};
    use std::path::Path;

    fn stage(db: &Db, dir: &Path) -> Stage {
        stage_with_inventory(
            db,
            dir,
            "[[departments]]\nid = \"finance\"\nlanguage = \"zh-CN\"\nmail_domains = [\"finance.gov.example\"]\ncontacts = [{ name = \"Li Wei\", email = \"li.wei@finance.gov.example\" }]\n",
        )
    }

    fn intake(id: &str, from: &str, subject: &str, references: &[&str]) -> MailIntake {
        MailIntake {
            mail: IncomingMail {
                message_id: id.into(),
                from: from.into(),
                from_name: "Li Wei".into(),
                subject: subject.into(),
                text: "打印机坏了".into(),
                references: references.iter().map(|r| r.to_string()).collect(),
                automatic: Vec::new(),
                attachments: vec![Part {
                    name: "photo.jpg".into(),
                    content_type: "image/jpeg".into(),
                    bytes: vec![1; 10],
                }],
            },
            caps: AttachmentCaps {
                each: 100,
                total: 100,
            },
            tag: Owner::Platform,
        }
    }

    #[test]
    fn a_reply_from_the_carriers_noc_is_its_response() {
        let (db, dir) = (Db::sqlite(), tempfile::tempdir().unwrap());
        let mut stage = stage_with_inventory(
            &db,
            dir.path(),
            "[[targets]]\nid = \"edge1\"\nkind = \"device\"\nowner = \"platform\"\n\n[[targets]]\nid = \"edge1-wan\"\nkind = \"interface\"\nowner = \"platform\"\ndevice = \"edge1\"\nifname = \"Te0/0/0\"\ndepends_on = [\"edge1\"]\n\n[[circuits]]\nid = \"acme-1\"\ncarrier = \"ACME\"\ncircuit_id = \"ACME-0042\"\na_end = \"edge1-wan\"\nnoc = [{ name = \"ACME NOC\", email = \"NOC@acme.example\" }]\n",
        );
        let now = 1_767_226_200_000;
        let new = NewTicket {
            rule: "CarrierLinkLoss".into(),
            target: "acme-1".into(),
            summary: "circuit down".into(),
            description: String::new(),
            severity: Severity::P2,
            tag: Some(Owner::Carrier),
            reason: "fault beyond the boundary".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: now,
            opened_by: "faultline".into(),
            channel: Channel::Monitoring,
            pages: true,
            reporter: None,
        };
        let id = stage.book.create_ticket(new, now).unwrap().id;
        stage.book.report_to_carriers(now);
        let responses = |stage: &Stage| {
            let ticket = stage.book.store.get(id).unwrap().unwrap();
            ticket
                .timeline
                .iter()
                .filter(|e| matches!(e.change, Change::CarrierResponded { .. }))
                .count()
        };
        // Our own engineer's reply threads in but is no carrier response.
        let ours = intake(
            "<a@x>",
            "li.wei@finance.gov.example",
            &format!("Re: [FL-{id}]"),
            &[],
        );
        assert_eq!(
            stage.take_mail(&ours, now + 1),
            Ok(MailOutcome::Threaded(id))
        );
        assert_eq!(responses(&stage), 0);
        let noc = intake(
            "<b@acme>",
            "noc@acme.example",
            &format!("Re: [FL-{id}] CT-889"),
            &[],
        );
        assert_eq!(
            stage.take_mail(&noc, now + 60_000),
            Ok(MailOutcome::Threaded(id))
        );
        assert_eq!(responses(&stage), 1);
        let ticket = stage.book.store.get(id).unwrap().unwrap();
        let clock = CarrierClock::of(&ticket).unwrap();
        assert_eq!(clock.response_ms(), Some(60_000));
    }

    faultline_incidents::both_stores!(mails_open_thread_and_never_duplicate);

    fn mails_open_thread_and_never_duplicate(db: &Db) {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = stage(db, dir.path());
        let now = 1_767_226_200_000;
        let known = intake("<1@f>", "li.wei@finance.gov.example", "打印机故障", &[]);
        let Ok(MailOutcome::Opened(id)) = stage.take_mail(&known, now) else {
            panic!("not opened");
        };
        assert_eq!(
            stage.take_mail(&known, now + 1),
            Ok(MailOutcome::Duplicate(id))
        );
        let ticket = stage.book.store.get(id).unwrap().unwrap();
        assert_eq!(
            (ticket.target.as_str(), ticket.tag, ticket.channel),
            (
                "department:finance",
                Some(Owner::Platform),
                Channel::Mailbox
            )
        );
        assert_eq!(ticket.customers[0].department, "finance");
        assert_eq!(
            ticket.reporter.as_ref().unwrap().message_id.as_deref(),
            Some("<1@f>")
        );
        assert!(
            ticket
                .description
                .contains("photo.jpg (image/jpeg, 10 bytes): #1")
        );
        // A second report of the same department is its own ticket.
        let other = intake("<2@f>", "zhang@finance.gov.example", "VPN", &[]);
        let Ok(MailOutcome::Opened(second)) = stage.take_mail(&other, now + 2) else {
            panic!("not opened");
        };
        assert_ne!(second, id);
        // Replies: by the subject token, and by referencing the reporter's first mail.
        let by_token = intake(
            "<3@f>",
            "li.wei@finance.gov.example",
            &format!("Re: [FL-{id}] x"),
            &[],
        );
        assert_eq!(
            stage.take_mail(&by_token, now + 3),
            Ok(MailOutcome::Threaded(id))
        );
        let by_reference = intake("<4@f>", "boss@finance.gov.example", "Re: x", &["<1@f>"]);
        assert_eq!(
            stage.take_mail(&by_reference, now + 4),
            Ok(MailOutcome::Threaded(id))
        );
        let ticket = stage.book.store.get(id).unwrap().unwrap();
        let numbers: Vec<Option<u32>> = ticket
            .timeline
            .iter()
            .filter_map(|e| match &e.change {
                Change::MailReceived { mail } => Some(mail.attachments[0].number),
                _ => None,
            })
            .collect();
        assert_eq!(
            numbers,
            [Some(2), Some(3)],
            "attachments numbered on per ticket"
        );
        assert_eq!(stage.book.store.attachment_count(id).unwrap(), 3);
        // An unknown sender: untagged, waiting for triage.
        let unknown = intake("<5@x>", "someone@elsewhere.example", "", &[]);
        let Ok(MailOutcome::Opened(triage)) = stage.take_mail(&unknown, now + 5) else {
            panic!("not opened");
        };
        let ticket = stage.book.store.get(triage).unwrap().unwrap();
        assert_eq!((ticket.target.as_str(), ticket.tag), (UNKNOWN_SENDER, None));
        assert_eq!(ticket.summary, "(no subject)");
    }
}

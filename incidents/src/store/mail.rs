//! The repair mailbox's part of the ticket store (mailbox → **incidents**): which mails, by
//! Message-ID, were turned into a ticket or recorded on one (`mail_seen`), and the attachments
//! kept with a ticket (`attachments`, the bytes in the database: backed up, moved and
//! restored with the tickets). Both are written in the same transaction as the ticket, so a
//! collector killed between fetching a mail and committing its ticket fetches it again and
//! finds it not yet seen, and one killed after the commit finds it seen: never two tickets.

use super::{SqliteStore, StoreError, from_sql_id, to_sql_id};
use crate::Millis;
use rusqlite::{OptionalExtension, Transaction, params};

/// A mail's identity and kept attachments, stored with the ticket it opened or was recorded on.
#[derive(Debug, Clone, Copy)]
pub struct MailRecord<'a> {
    /// Its Message-ID (unique: a second ticket or entry for it is refused).
    pub message_id: &'a str,
    /// When it was taken in.
    pub at_ms: Millis,
    /// Its attachments within the size caps, numbered on from the ticket's
    /// [`attachment_count`](super::TicketStore::attachment_count).
    pub attachments: &'a [Attachment],
}

/// An attachment kept with a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its number on the ticket (1, 2 …).
    pub number: u32,
    /// File name as sent.
    pub name: String,
    /// MIME type as sent.
    pub content_type: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Records `mail` for ticket `id` within `tx`.
pub(super) fn record(
    tx: &Transaction<'_>,
    id: i64,
    mail: &MailRecord<'_>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mail_seen (message_id, ticket_id, at_ms) VALUES (?1, ?2, ?3)",
        params![mail.message_id, id, mail.at_ms],
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO attachments (ticket_id, number, name, content_type, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for a in mail.attachments {
        insert.execute(params![id, a.number, a.name, a.content_type, a.bytes])?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) fn mail_ticket_of(&self, message_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT ticket_id FROM mail_seen WHERE message_id = ?1",
                [message_id],
                |row| row.get::<_, i64>(0),
            )
            .optional()?
            .map(from_sql_id))
    }

    pub(super) fn attachment_of(
        &self,
        ticket: u64,
        number: u32,
    ) -> Result<Option<Attachment>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, content_type, bytes FROM attachments
                 WHERE ticket_id = ?1 AND number = ?2",
                params![to_sql_id(ticket), number],
                |row| {
                    Ok(Attachment {
                        number,
                        name: row.get(0)?,
                        content_type: row.get(1)?,
                        bytes: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub(super) fn attachments_of(&self, ticket: u64) -> Result<u32, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM attachments WHERE ticket_id = ?1",
            [to_sql_id(ticket)],
            |row| row.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_stores;
    use crate::rules::Severity;
    use crate::store::test_db::Db;
    use crate::ticket::{
        Channel, Command, MailReceived, NewTicket, Reporter, Ticket, TicketPolicy,
    };

    both_stores!(
        a_mail_opens_one_ticket_and_a_reply_one_entry_with_their_attachments_across_reopen,
        old_rows_with_a_string_tag_and_monitoring_uniqueness_survive_the_migration
    );

    fn mailed(target: &str) -> Ticket {
        let new = NewTicket {
            rule: "MailboxReport".into(),
            target: target.into(),
            summary: "printer on fire".into(),
            description: "it burns".into(),
            severity: Severity::P3,
            tag: None,
            reason: "mail from an unknown sender: waiting for triage".into(),
            evidence: None,
            customers: Vec::new(),
            started_at_ms: 1_000,
            opened_by: "x@elsewhere.example".into(),
            channel: Channel::Mailbox,
            pages: true,
            reporter: Some(Reporter {
                name: "X".into(),
                email: Some("x@elsewhere.example".into()),
                message_id: Some("<a@elsewhere.example>".into()),
                ..Reporter::default()
            }),
        };
        Ticket::open(0, new, &TicketPolicy::default(), 2_000).0
    }

    fn attachment(number: u32, bytes: &[u8]) -> Attachment {
        Attachment {
            number,
            name: format!("photo{number}.jpg"),
            content_type: "image/jpeg".into(),
            bytes: bytes.to_vec(),
        }
    }

    fn a_mail_opens_one_ticket_and_a_reply_one_entry_with_their_attachments_across_reopen(db: &Db) {
        let first = [attachment(1, b"\xff\xd8jpeg")];
        let id = {
            let mut store = db.open();
            let mail = MailRecord {
                message_id: "<a@elsewhere.example>",
                at_ms: 2_000,
                attachments: &first,
            };
            let (ticket, positions) = store
                .create_with(mailed("mailbox:unknown"), Some(&mail))
                .unwrap();
            assert_eq!(positions.len(), 1);
            // The same mail again (a restart that fetched it before the flag was set) is refused
            // and leaves nothing behind.
            let again = store.create_with(mailed("mailbox:unknown"), Some(&mail));
            assert!(again.is_err());
            assert_eq!(store.list(None, &Default::default(), 10).unwrap().len(), 1);
            // Untagged mailbox tickets on the same fingerprint do not collide.
            let other = MailRecord {
                message_id: "<b@elsewhere.example>",
                at_ms: 2_500,
                attachments: &[],
            };
            let (second, _) = store
                .create_with(mailed("mailbox:unknown"), Some(&other))
                .unwrap();
            assert_ne!(second.id, ticket.id);
            assert_eq!(store.get(second.id).unwrap().unwrap().tag, None);
            ticket.id
        };
        let mut store = db.open();
        assert_eq!(
            store.mail_ticket("<a@elsewhere.example>").unwrap(),
            Some(id)
        );
        assert_eq!(store.mail_ticket("<nope@x>").unwrap(), None);
        assert_eq!(store.attachment_count(id).unwrap(), 1);
        let ticket = store.get(id).unwrap().unwrap();
        let reply = MailReceived {
            from: "x@elsewhere.example".into(),
            subject: "Re: [FL-1] printer on fire".into(),
            text: "still burning".into(),
            message_id: "<c@elsewhere.example>".into(),
            attachments: Vec::new(),
        };
        let (ticket, entries) = ticket
            .apply(
                Command::RecordMail(Box::new(reply.clone())),
                &TicketPolicy::default(),
                3_000,
            )
            .unwrap();
        assert_eq!(entries.len(), 1);
        let second = [attachment(2, b"more")];
        store
            .update_with(
                &ticket,
                Some(&MailRecord {
                    message_id: &reply.message_id,
                    at_ms: 3_000,
                    attachments: &second,
                }),
            )
            .unwrap();
        assert_eq!(
            store.mail_ticket("<c@elsewhere.example>").unwrap(),
            Some(id)
        );
        assert_eq!(store.attachment(id, 2).unwrap(), Some(second[0].clone()));
        assert_eq!(store.attachment(id, 1).unwrap(), Some(first[0].clone()));
        assert_eq!(store.attachment(id, 3).unwrap(), None);
        let stored = store.get(id).unwrap().unwrap();
        assert_eq!(stored.reporter, ticket.reporter);
        assert!(matches!(
            &stored.timeline[1].change,
            crate::Change::MailReceived { mail } if *mail == reply
        ));
    }

    fn old_rows_with_a_string_tag_and_monitoring_uniqueness_survive_the_migration(db: &Db) {
        let mut store = db.open();
        // A body as an older Faultline stored it: tag a string, no reporter, no channel.
        let mut old = serde_json::to_value(mailed("edge1")).unwrap();
        let map = old.as_object_mut().unwrap();
        map.insert("tag".into(), "carrier".into());
        map.remove("reporter");
        map.remove("channel");
        let old: Ticket = serde_json::from_value(old).unwrap();
        assert_eq!(old.tag, Some(crate::Owner::Carrier));
        assert_eq!(old.channel, Channel::Monitoring);
        assert_eq!(old.reporter, None);
        let (first, _) = store.create(old.clone()).unwrap();
        let dup = store.create(old).unwrap_err();
        assert!(
            matches!(dup, StoreError::DuplicateActive { id, .. } if id == first.id),
            "{dup}"
        );
    }
}

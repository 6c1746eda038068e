//! Tickets, timelines, follow-ups, mails and the feed in PostgreSQL (store → **PostgreSQL**):
//! [`TicketStore`] for [`PgStore`], statement for statement what the SQLite store does, each call
//! one transaction.

use super::{FEED_LOCK, PgStore, schema, to_count};
use crate::Millis;
use crate::followup::{FollowUpTask, TaskState};
use crate::inventory::tag_label;
use crate::store::{
    Attachment, Fed, FeedItem, FeedPosition, ListWindow, MailRecord, StoreError, TicketStore, body,
    enum_text, from_sql_id, to_sql_id,
};
use crate::ticket::{Channel, Ticket, TicketState, TimelineEntry};
use postgres::types::ToSql;
use postgres::{GenericClient, Transaction};
use std::collections::BTreeMap;

type Param<'a> = &'a (dyn ToSql + Sync);

/// Loads the tickets `sql` selects (`id, body`), each with its timeline.
fn query_tickets(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Ticket>, StoreError> {
    let rows = client.query(sql, params)?;
    let timeline = client
        .prepare("SELECT at_ms, who, change FROM timeline WHERE ticket_id = $1 ORDER BY seq")?;
    let mut tickets = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let mut value: serde_json::Value = serde_json::from_str(row.try_get(1)?)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("id".into(), from_sql_id(id).into());
            map.insert("timeline".into(), serde_json::Value::Array(Vec::new()));
        }
        let mut ticket: Ticket = serde_json::from_value(value)?;
        for entry in client.query(&timeline, &[&id])? {
            ticket.timeline.push(TimelineEntry {
                at_ms: entry.try_get(0)?,
                who: entry.try_get(1)?,
                change: serde_json::from_str(entry.try_get(2)?)?,
            });
        }
        tickets.push(ticket);
    }
    Ok(tickets)
}

fn latest(
    client: &mut impl GenericClient,
    rule: &str,
    target: &str,
) -> Result<Option<Ticket>, StoreError> {
    Ok(query_tickets(
        client,
        "SELECT id, body FROM tickets WHERE rule = $1 AND target = $2 ORDER BY id DESC LIMIT 1",
        &[&rule, &target],
    )?
    .pop())
}

fn query_followups(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<FollowUpTask>, StoreError> {
    client
        .query(sql, params)?
        .iter()
        .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
        .collect()
}

/// Inserts feed rows with `sql`, each after the feed lock (see the module header of
/// [`super`]); returns their positions.
fn feed(
    tx: &mut Transaction<'_>,
    sql: &str,
    rows: &[&[Param<'_>]],
) -> Result<Vec<FeedPosition>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
    let insert = tx.prepare(sql)?;
    rows.iter()
        .map(|params| {
            let position: i64 = tx.query_one(&insert, params)?.try_get(0)?;
            Ok(from_sql_id(position))
        })
        .collect()
}

/// Appends `entries` as timeline entries `from..` of ticket `id`, each fed.
fn append_timeline(
    tx: &mut Transaction<'_>,
    id: i64,
    from: usize,
    entries: &[TimelineEntry],
) -> Result<Vec<FeedPosition>, StoreError> {
    let insert = tx.prepare(
        "INSERT INTO timeline (ticket_id, seq, at_ms, who, change) VALUES ($1, $2, $3, $4, $5)",
    )?;
    let mut seqs = Vec::with_capacity(entries.len());
    for (seq, entry) in (from..).zip(entries) {
        let seq = to_count(u64::try_from(seq).unwrap_or(u64::MAX));
        let change = serde_json::to_string(&entry.change)?;
        tx.execute(&insert, &[&id, &seq, &entry.at_ms, &entry.who, &change])?;
        seqs.push(seq);
    }
    let rows: Vec<[Param<'_>; 2]> = seqs.iter().map(|seq| [&id as Param<'_>, seq]).collect();
    let rows: Vec<&[Param<'_>]> = rows.iter().map(|r| &r[..]).collect();
    feed(
        tx,
        "INSERT INTO feed (ticket_id, seq) VALUES ($1, $2) RETURNING position",
        &rows,
    )
}

/// Records `mail` for ticket `id` within `tx`.
fn record_mail(tx: &mut Transaction<'_>, id: i64, mail: &MailRecord<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mail_seen (message_id, ticket_id, at_ms) VALUES ($1, $2, $3)",
        &[&mail.message_id, &id, &mail.at_ms],
    )?;
    let insert = tx.prepare(
        "INSERT INTO attachments (ticket_id, number, name, content_type, bytes)
         VALUES ($1, $2, $3, $4, $5)",
    )?;
    for a in mail.attachments {
        let number = i64::from(a.number);
        tx.execute(&insert, &[&id, &number, &a.name, &a.content_type, &a.bytes])?;
    }
    Ok(())
}

impl TicketStore for PgStore {
    fn schema_version(&self) -> Result<i64, StoreError> {
        self.run(schema::version)
    }

    fn create_with(
        &mut self,
        mut ticket: Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<(Ticket, Vec<FeedPosition>), StoreError> {
        self.run(move |client| {
            let mut tx = client.transaction()?;
            if ticket.state.is_active()
                && ticket.channel == Channel::Monitoring
                && let Some(existing) = latest(&mut tx, &ticket.rule, &ticket.target)?
                && existing.state.is_active()
            {
                return Err(StoreError::DuplicateActive {
                    rule: ticket.rule,
                    target: ticket.target,
                    id: existing.id,
                });
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO tickets (rule, target, state, tag, severity, opened_at_ms,
                       next_due_ms, body, channel)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &[
                        &ticket.rule,
                        &ticket.target,
                        &ticket.state.as_str(),
                        &tag_label(ticket.tag),
                        &enum_text(&ticket.severity)?,
                        &ticket.opened_at_ms,
                        &ticket.next_due_ms(),
                        &body(&ticket)?,
                        &ticket.channel.as_str(),
                    ],
                )?
                .try_get(0)?;
            let positions = append_timeline(&mut tx, id, 0, &ticket.timeline)?;
            if let Some(mail) = mail {
                record_mail(&mut tx, id, mail)?;
            }
            tx.commit()?;
            ticket.id = from_sql_id(id);
            Ok((ticket, positions))
        })
    }

    fn update_with(
        &mut self,
        ticket: &Ticket,
        mail: Option<&MailRecord<'_>>,
    ) -> Result<Vec<FeedPosition>, StoreError> {
        let id = to_sql_id(ticket.id);
        self.run(move |client| {
            let mut tx = client.transaction()?;
            // Locks the ticket's row: its timeline is counted and appended in one go.
            let stored = tx
                .query_opt(
                    "SELECT (SELECT COUNT(*) FROM timeline t WHERE t.ticket_id = k.id)
                     FROM tickets k WHERE k.id = $1 FOR UPDATE",
                    &[&id],
                )?
                .ok_or(StoreError::NotFound(ticket.id))?
                .try_get::<_, i64>(0)?;
            let stored = usize::try_from(stored).unwrap_or(0);
            if stored > ticket.timeline.len() {
                return Err(StoreError::TimelineShrinks {
                    id: ticket.id,
                    stored,
                    given: ticket.timeline.len(),
                });
            }
            tx.execute(
                "UPDATE tickets SET state = $2, tag = $3, severity = $4, next_due_ms = $5,
                   body = $6 WHERE id = $1",
                &[
                    &id,
                    &ticket.state.as_str(),
                    &tag_label(ticket.tag),
                    &enum_text(&ticket.severity)?,
                    &ticket.next_due_ms(),
                    &body(ticket)?,
                ],
            )?;
            let positions = append_timeline(&mut tx, id, stored, &ticket.timeline[stored..])?;
            if let Some(mail) = mail {
                record_mail(&mut tx, id, mail)?;
            }
            tx.commit()?;
            Ok(positions)
        })
    }

    fn mail_ticket(&self, message_id: &str) -> Result<Option<u64>, StoreError> {
        self.run(|client| {
            let row = client.query_opt(
                "SELECT ticket_id FROM mail_seen WHERE message_id = $1",
                &[&message_id],
            )?;
            Ok(row
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()?
                .map(from_sql_id))
        })
    }

    fn attachment(&self, ticket: u64, number: u32) -> Result<Option<Attachment>, StoreError> {
        self.run(|client| {
            let row = client.query_opt(
                "SELECT name, content_type, bytes FROM attachments
                 WHERE ticket_id = $1 AND number = $2",
                &[&to_sql_id(ticket), &i64::from(number)],
            )?;
            row.map(|r| {
                Ok(Attachment {
                    number,
                    name: r.try_get(0)?,
                    content_type: r.try_get(1)?,
                    bytes: r.try_get(2)?,
                })
            })
            .transpose()
        })
    }

    fn attachment_count(&self, ticket: u64) -> Result<u32, StoreError> {
        self.run(|client| {
            let count: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM attachments WHERE ticket_id = $1",
                    &[&to_sql_id(ticket)],
                )?
                .try_get(0)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    fn get(&self, id: u64) -> Result<Option<Ticket>, StoreError> {
        self.run(|client| {
            Ok(query_tickets(
                client,
                "SELECT id, body FROM tickets WHERE id = $1",
                &[&to_sql_id(id)],
            )?
            .pop())
        })
    }

    fn latest(&self, rule: &str, target: &str) -> Result<Option<Ticket>, StoreError> {
        self.run(|client| latest(client, rule, target))
    }

    fn unclosed(&self) -> Result<Vec<Ticket>, StoreError> {
        self.run(|client| {
            query_tickets(
                client,
                "SELECT id, body FROM tickets WHERE state != $1 ORDER BY id",
                &[&TicketState::Closed.as_str()],
            )
        })
    }

    fn list(
        &self,
        state: Option<TicketState>,
        window: &ListWindow,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        let limit = to_count(u64::try_from(limit).unwrap_or(u64::MAX));
        self.run(|client| {
            query_tickets(
                client,
                "SELECT id, body FROM tickets
                 WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::BIGINT IS NULL OR id < $2)
                   AND ($3::BIGINT IS NULL OR opened_at_ms >= $3)
                   AND ($4::BIGINT IS NULL OR opened_at_ms < $4)
                 ORDER BY id DESC LIMIT $5",
                &[
                    &state.map(TicketState::as_str),
                    &window.before.map(to_sql_id),
                    &window.since_ms,
                    &window.until_ms,
                    &limit,
                ],
            )
        })
    }

    fn record_first_seen(&mut self, department: &str, at_ms: Millis) -> Result<Millis, StoreError> {
        self.run(|client| {
            client.execute(
                "INSERT INTO departments_seen (department, first_seen_ms) VALUES ($1, $2)
                 ON CONFLICT (department) DO NOTHING",
                &[&department, &at_ms],
            )?;
            Ok(client
                .query_one(
                    "SELECT first_seen_ms FROM departments_seen WHERE department = $1",
                    &[&department],
                )?
                .try_get(0)?)
        })
    }

    fn first_seen(&self) -> Result<BTreeMap<String, Millis>, StoreError> {
        self.run(|client| {
            client
                .query(
                    "SELECT department, first_seen_ms FROM departments_seen",
                    &[],
                )?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    fn create_followup(&mut self, task: &FollowUpTask) -> Result<Option<FeedPosition>, StoreError> {
        self.run(|client| {
            let mut tx = client.transaction()?;
            let added = tx.execute(
                "INSERT INTO followups (key, department, kind, due_at_ms, state, body)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                &[
                    &task.key,
                    &task.followup.department,
                    &task.followup.kind.label(),
                    &task.followup.due_at_ms,
                    &task.state.as_str(),
                    &serde_json::to_string(task)?,
                ],
            )?;
            if added == 0 {
                return Ok(None);
            }
            let key: Param<'_> = &task.key;
            let position = feed(
                &mut tx,
                "INSERT INTO feed (followup) VALUES ($1) RETURNING position",
                &[&[key]],
            )?;
            tx.commit()?;
            Ok(position.first().copied())
        })
    }

    fn complete_followup(&mut self, task: &FollowUpTask) -> Result<(), StoreError> {
        if task.state != TaskState::Done {
            return Err(StoreError::FollowUpNotPending(task.key.clone()));
        }
        let changed = self.run(|client| {
            Ok(client.execute(
                "UPDATE followups SET state = $2, body = $3 WHERE key = $1 AND state = $4",
                &[
                    &task.key,
                    &task.state.as_str(),
                    &serde_json::to_string(task)?,
                    &TaskState::Pending.as_str(),
                ],
            )?)
        })?;
        if changed == 0 {
            return Err(StoreError::FollowUpNotPending(task.key.clone()));
        }
        Ok(())
    }

    fn followup(&self, key: &str) -> Result<Option<FollowUpTask>, StoreError> {
        self.run(|client| {
            Ok(
                query_followups(client, "SELECT body FROM followups WHERE key = $1", &[&key])?
                    .pop(),
            )
        })
    }

    fn followups(
        &self,
        state: Option<TaskState>,
        limit: usize,
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        let limit = to_count(u64::try_from(limit).unwrap_or(u64::MAX));
        self.run(|client| {
            query_followups(
                client,
                "SELECT body FROM followups WHERE $1::TEXT IS NULL OR state = $1
                 ORDER BY due_at_ms, key LIMIT $2",
                &[&state.map(TaskState::as_str), &limit],
            )
        })
    }

    fn feed_after(&self, after: FeedPosition, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        let limit = to_count(u64::try_from(limit).unwrap_or(u64::MAX));
        self.run(|client| {
            let rows = client.query(
                "SELECT f.position, f.ticket_id, f.seq, u.body
                 FROM feed f LEFT JOIN followups u ON u.key = f.followup
                 WHERE f.position > $1 ORDER BY f.position LIMIT $2",
                &[&to_sql_id(after), &limit],
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let fed = match (
                    row.try_get::<_, Option<i64>>(1)?,
                    row.try_get::<_, Option<i64>>(2)?,
                    row.try_get::<_, Option<&str>>(3)?,
                ) {
                    (Some(ticket), Some(seq), _) => Fed::Entry {
                        ticket: from_sql_id(ticket),
                        index: usize::try_from(seq).unwrap_or(usize::MAX),
                    },
                    (_, _, Some(body)) => Fed::FollowUp(serde_json::from_str(body)?),
                    // The schema's CHECK and foreign keys rule this out.
                    _ => continue,
                };
                items.push(FeedItem {
                    position: from_sql_id(row.try_get(0)?),
                    fed,
                });
            }
            Ok(items)
        })
    }

    fn feed_end(&self) -> Result<FeedPosition, StoreError> {
        self.run(|client| {
            let end: i64 = client
                .query_one("SELECT COALESCE(MAX(position), 0)::BIGINT FROM feed", &[])?
                .try_get(0)?;
            Ok(from_sql_id(end))
        })
    }
}

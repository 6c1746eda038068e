//! The incident stage's ticket book (incidents → **store** → notifications): the unclosed
//! tickets in memory over the SQLite store, and the event of every stored change queued for the
//! notifier. It carries out what the pure [`Dispatch`](faultline_incidents::dispatch::Dispatch)
//! decides (as its [`Book`]) and what the API asks.

use super::{IncidentMetrics, Setup, StageEvent, TicketEvent, store_refusal, tag_label};
use crate::api::Refusal;
use faultline_incidents::dispatch::{Book, Note};
use faultline_incidents::store::MailRecord;
use faultline_incidents::{Command, FeedPosition, Millis, NewTicket, Store, Ticket, TicketState};
use std::sync::Arc;

/// The unclosed tickets, their store, and the events waiting for the notifier.
pub(super) struct StoreBook {
    pub(super) setup: Arc<Setup>,
    pub(super) store: Box<dyn Store>,
    /// Every ticket that is not closed, oldest first (what the desk and the timers look at).
    pub(super) tickets: Vec<Ticket>,
    /// Events of the message being handled, sent when it is done.
    pub(super) outbox: Vec<StageEvent>,
    pub(super) metrics: Arc<IncidentMetrics>,
}

impl StoreBook {
    pub(super) fn automatic_failed(&self, ticket: u64, refusal: &Refusal) {
        let reason = match refusal {
            Refusal::Unavailable(_) => "store",
            _ => "rejected",
        };
        self.metrics.error(reason, 1);
        tracing::error!(ticket, error = %refusal, "automatic ticket change failed");
    }

    /// Opens and stores a ticket, announcing its first entry.
    pub(super) fn create_ticket(&mut self, new: NewTicket, now: Millis) -> Result<Ticket, Refusal> {
        self.create_ticket_with(new, None, now)
    }

    /// Opens and stores a ticket with the mail that opened it (in one transaction), announcing
    /// its first entry.
    pub(super) fn create_ticket_with(
        &mut self,
        new: NewTicket,
        mail: Option<&MailRecord<'_>>,
        now: Millis,
    ) -> Result<Ticket, Refusal> {
        let (ticket, _) = Ticket::open(0, new, &self.setup.policy, now);
        let (ticket, positions) = self
            .store
            .create_with(ticket, mail)
            .map_err(store_refusal)?;
        tracing::info!(
            ticket = ticket.id,
            rule = %ticket.rule,
            target = %ticket.target,
            tag = tag_label(ticket.tag),
            reason = %ticket.reason,
            "ticket opened"
        );
        self.announce(&ticket, &positions);
        self.tickets.push(ticket.clone());
        Ok(ticket)
    }

    /// Applies a command to ticket `id`, stores it, then announces the new entries.
    pub(super) fn change_ticket(
        &mut self,
        id: u64,
        command: Command,
        now: Millis,
    ) -> Result<Ticket, Refusal> {
        self.change_ticket_with(id, command, None, now)
    }

    /// [`change_ticket`](Self::change_ticket) recording the mail it comes from in the same
    /// transaction.
    pub(super) fn change_ticket_with(
        &mut self,
        id: u64,
        command: Command,
        mail: Option<&MailRecord<'_>>,
        now: Millis,
    ) -> Result<Ticket, Refusal> {
        let index = self.tickets.iter().position(|t| t.id == id);
        let stored;
        let current = match index {
            Some(i) => &self.tickets[i],
            None => {
                stored = self
                    .store
                    .get(id)
                    .map_err(store_refusal)?
                    .ok_or(Refusal::NotFound(id))?;
                &stored
            }
        };
        let (next, _) = current
            .apply(command, &self.setup.policy, now)
            .map_err(|e| Refusal::Conflict(e.to_string()))?;
        let positions = self.store.update_with(&next, mail).map_err(store_refusal)?;
        self.announce(&next, &positions);
        match index {
            Some(i) if next.state == TicketState::Closed => {
                self.tickets.remove(i);
            }
            Some(i) => self.tickets[i] = next.clone(),
            None if next.state != TicketState::Closed => self.tickets.push(next.clone()),
            None => {}
        }
        Ok(next)
    }

    /// Announces the newest entries of `ticket`, one per feed position the store gave them.
    fn announce(&mut self, ticket: &Ticket, positions: &[FeedPosition]) {
        let shared = Arc::new(ticket.clone());
        let first = ticket.timeline.len().saturating_sub(positions.len());
        for (index, &position) in (first..).zip(positions) {
            if let Some(event) = self.ticket_event(shared.clone(), index, position) {
                self.send(event);
            }
        }
    }

    /// Counts the entry's SLA and duration statistics and queues its event for the notifier.
    /// Live and replayed entries alike: a replayed one was counted only by the process that died.
    pub(super) fn send(&mut self, event: TicketEvent) {
        self.metrics.observe(&event.ticket, &event.entry);
        self.outbox.push(StageEvent::Ticket(event));
    }

    /// The event of `ticket`'s timeline entry `index` at feed `position`, its page screened by
    /// the maintenance windows; `None` when the timeline has no such entry.
    pub(super) fn ticket_event(
        &self,
        ticket: Arc<Ticket>,
        index: usize,
        position: FeedPosition,
    ) -> Option<TicketEvent> {
        let entry = ticket.timeline.get(index)?.clone();
        let held_by = self
            .setup
            .maintenance
            .screen_page(&self.setup.inventory, &ticket, &entry)
            .map(|s| s.window);
        Some(TicketEvent {
            ticket,
            entry,
            index,
            held_by,
            position,
        })
    }
}

impl Book for StoreBook {
    fn tickets(&self) -> &[Ticket] {
        &self.tickets
    }

    fn create(&mut self, new: NewTicket, now: Millis) -> Option<Ticket> {
        self.create_ticket(new, now)
            .map_err(|refusal| self.automatic_failed(0, &refusal))
            .ok()
    }

    fn apply(&mut self, id: u64, command: Command, now: Millis) -> Option<Ticket> {
        self.change_ticket(id, command, now)
            .map_err(|refusal| self.automatic_failed(id, &refusal))
            .ok()
    }

    fn note(&mut self, note: Note<'_>) {
        match note {
            Note::Settling { firing, waiting } => tracing::info!(
                rule = %firing.rule,
                target = %firing.target,
                waiting = ?waiting,
                "new root waits for its upstream to report before it opens a ticket"
            ),
            Note::Maintenance {
                firing,
                suppression,
            } => tracing::info!(
                rule = %firing.rule,
                target = %firing.target,
                note = %suppression.note(),
                "incident held back by maintenance: no ticket, no page"
            ),
            Note::MaintenanceEnded {
                firing,
                suppression,
            } => tracing::info!(
                rule = %firing.rule,
                target = %firing.target,
                window = %suppression.window,
                "maintenance window ended with the incident still firing: re-evaluating"
            ),
            Note::Nothing { why } => tracing::debug!(why, "rule event changes no ticket"),
        }
    }
}

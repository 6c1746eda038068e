//! REST API requests in the incident stage (API → **incidents**): listing and reading tickets,
//! changing them by hand, customer-reported faults (new, or linked to the open ticket of the same
//! fault) and follow-ups, each answered on its own reply channel.

use super::stage::Stage;
use super::{LIST_SCAN, MANUAL_RULE, store_refusal, tag_label};
use crate::api::{
    Candidate, CandidateQuery, ManualReport, Refusal, ReportLink, Request, TicketPage, TicketQuery,
};
use faultline_incidents::report_link::{ReportedFault, link_candidates};
use faultline_incidents::ticket::{Customer, LinkedReport};
use faultline_incidents::{Change, Command, Millis, NewTicket, Ticket};

impl Stage {
    pub(super) fn on_request(&mut self, request: Request) {
        let now = faultline_wire::now_ms();
        // A requester that gave up (client gone) no longer needs the answer.
        match request {
            Request::Mail { intake, reply } => {
                let _ = reply.send(self.take_mail(&intake, now));
            }
            Request::Attachment { id, number, reply } => {
                let found = self
                    .book
                    .store
                    .attachment(id, number)
                    .map_err(store_refusal)
                    .and_then(|a| a.ok_or(Refusal::NoAttachment(id, number)));
                let _ = reply.send(found);
            }
            Request::List { query, reply } => {
                let _ = reply.send(self.list(&query));
            }
            Request::Get { id, reply } => {
                let found = match self.book.tickets.iter().find(|t| t.id == id) {
                    Some(t) => Ok(t.clone()),
                    None => self
                        .book
                        .store
                        .get(id)
                        .map_err(store_refusal)
                        .and_then(|t| t.ok_or(Refusal::NotFound(id))),
                };
                let _ = reply.send(found);
            }
            Request::Change { id, command, reply } => {
                let _ = reply.send(self.book.change_ticket(id, command, now));
            }
            Request::Create { report, reply } => {
                let _ = reply.send(self.report(report, now));
            }
            Request::LinkReport { id, link, reply } => {
                let _ = reply.send(self.link_report(id, link, now));
            }
            Request::LinkCandidates { query, reply } => {
                let _ = reply.send(self.link_candidates(&query));
            }
            Request::Plan { ticket, reply } => {
                let _ = reply.send(self.plan(*ticket, now));
            }
            Request::FollowUps { query, reply } => {
                let found = self
                    .book
                    .store
                    .followups(query.state, LIST_SCAN)
                    .map(|tasks| {
                        tasks
                            .into_iter()
                            .filter(|t| {
                                query
                                    .department
                                    .as_deref()
                                    .is_none_or(|d| t.followup.department == d)
                            })
                            .take(query.limit)
                            .collect()
                    });
                let _ = reply.send(found.map_err(store_refusal));
            }
            Request::CompleteFollowUp {
                key,
                by,
                note,
                reply,
            } => {
                let _ = reply.send(self.complete_followup(&key, &by, &note, now));
            }
        }
    }

    /// One page of the tickets matching `query`: reads up to [`LIST_SCAN`] stored tickets of
    /// its window, newest first, and keeps those the other filters match, up to the limit. The
    /// page's `next` cursor continues after the last ticket returned, or after the last one read
    /// when the read stopped short of the limit, so paging reaches the whole history.
    fn list(&self, query: &TicketQuery) -> Result<TicketPage, Refusal> {
        let site_of = |target: &str| {
            let room = self.setup.inventory.target(target)?.room.as_deref()?;
            Some(self.setup.inventory.room(room)?.site.as_str())
        };
        let role_of = |target: &str| Some(self.setup.inventory.target(target)?.role());
        let scanned = self
            .book
            .store
            .list(query.state, &query.window, LIST_SCAN)
            .map_err(store_refusal)?;
        let read_all = scanned.len() < LIST_SCAN;
        let last_read = scanned.last().map(|t| t.id);
        let tickets: Vec<Ticket> = scanned
            .into_iter()
            .filter(|t| query.tag.is_none_or(|tag| t.tag == tag))
            .filter(|t| query.severity.is_none_or(|s| t.severity == s))
            .filter(|t| {
                query
                    .customer
                    .as_deref()
                    .is_none_or(|c| t.customers.iter().any(|x| x.department == c))
            })
            .filter(|t| {
                query
                    .site
                    .as_deref()
                    .is_none_or(|s| site_of(&t.target) == Some(s))
            })
            .filter(|t| query.role.is_none_or(|r| role_of(&t.target) == Some(r)))
            .filter(|t| query.channel.is_none_or(|c| t.channel == c))
            .take(query.limit)
            .collect();
        let next = if tickets.len() == query.limit {
            tickets.last().map(|t| t.id)
        } else if read_all {
            None
        } else {
            last_read
        };
        Ok(TicketPage { tickets, next })
    }

    /// Links a report made by hand to open ticket `id`: its department (named, or the target's)
    /// becomes an affected customer; an unknown department is refused, naming the field.
    fn link_report(&mut self, id: u64, link: ReportLink, now: Millis) -> Result<Ticket, Refusal> {
        let inventory = &self.setup.inventory;
        let department = match (&link.department, &link.target) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(t)) => inventory.department_of(t).map(|d| d.id.clone()),
            (None, None) => None,
        };
        let customer = match department {
            Some(d) => Some(
                Customer::of_department(inventory, &d, link.target.as_deref()).ok_or_else(
                    || Refusal::invalid("department", format!("unknown department `{d}`")),
                )?,
            ),
            None => None,
        };
        let report = LinkedReport {
            by: link.by,
            channel: link.channel,
            summary: link.summary,
            description: link.description,
            reporter: link.reporter,
            customer,
        };
        self.book
            .change_ticket(id, Command::LinkReport(Box::new(report)), now)
    }

    /// The open automatic tickets a report by hand may be about
    /// ([`faultline_incidents::report_link`]), each with its ticket.
    fn link_candidates(&self, query: &CandidateQuery) -> Result<Vec<Candidate>, Refusal> {
        let inventory = &self.setup.inventory;
        if let Some(d) = query.department.as_deref()
            && inventory.department(d).is_none()
        {
            return Err(Refusal::invalid(
                "department",
                format!("unknown department `{d}`"),
            ));
        }
        let fault = ReportedFault {
            target: query.target.as_deref(),
            department: query.department.as_deref(),
        };
        Ok(link_candidates(&fault, &self.book.tickets, inventory)
            .into_iter()
            .filter_map(|c| {
                let ticket = self.book.tickets.iter().find(|t| t.id == c.ticket)?;
                Some(Candidate {
                    ticket: ticket.clone(),
                    kind: c.kind,
                    why: c.why,
                })
            })
            .collect())
    }

    /// A capacity planning need: one active planning ticket per pool. With one active, the need
    /// is added as a comment unless the ticket already says it (a restarted watch asks again);
    /// otherwise (none yet, or a human resolved or closed the last) a new ticket opens.
    fn plan(&mut self, new: NewTicket, now: Millis) -> Result<Ticket, Refusal> {
        let active = self.book.tickets.iter().find(|t| {
            t.state.is_active() && t.fingerprint() == (new.rule.as_str(), new.target.as_str())
        });
        let Some(active) = active else {
            return self.book.create_ticket(new, now);
        };
        let text = format!("{}\n{}", new.summary, new.description);
        let said = active
            .timeline
            .iter()
            .rev()
            .find_map(|e| match &e.change {
                Change::Commented { text } if e.who == new.opened_by => Some(text.as_str()),
                _ => None,
            })
            .map_or(active.summary == new.summary, |last| last == text);
        if said {
            return Ok(active.clone());
        }
        let id = active.id;
        let command = Command::Comment {
            by: new.opened_by,
            text,
        };
        self.book.change_ticket(id, command, now)
    }

    /// A customer-reported fault: the same queue as automatic tickets (no evidence, pages).
    fn report(&mut self, report: ManualReport, now: Millis) -> Result<Ticket, Refusal> {
        let target = self.setup.inventory.target(&report.target);
        let tag = match (report.tag, target) {
            (Some(tag), _) => tag,
            (None, Some(t)) => t.owner,
            (None, None) => {
                return Err(Refusal::Invalid {
                    field: "tag".into(),
                    message: format!(
                        "required: target `{}` is not in the inventory",
                        report.target
                    ),
                });
            }
        };
        let reason = report.reason.unwrap_or_else(|| match report.tag {
            None => format!(
                "reported by a customer; {} owns the target",
                tag_label(Some(tag))
            ),
            Some(_) => format!(
                "reported by a customer; tagged {} by {}",
                tag_label(Some(tag)),
                report.by
            ),
        });
        let customers = Customer::of_target(&self.setup.inventory, &report.target)
            .into_iter()
            .collect();
        let new = NewTicket {
            rule: MANUAL_RULE.to_string(),
            target: report.target,
            summary: report.summary,
            description: report.description,
            severity: report.severity,
            tag: Some(tag),
            reason,
            evidence: None,
            customers,
            started_at_ms: report.started_at_ms.unwrap_or(now),
            opened_by: report.by,
            channel: report.channel,
            pages: true,
            reporter: report.reporter,
        };
        self.book.create_ticket(new, now)
    }
}

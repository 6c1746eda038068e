//! Console rendering and authorization against a stand-in incidents stage that keeps tickets in
//! memory and applies commands with the real ticket state machine.

use super::*;
use crate::api::{Candidate, Refusal, Request, TicketPage};
use crate::config::{ApiToken, DepartmentLogin, Role};
use axum::body::Body;
use axum::http::Request as HttpRequest;
use faultline_incidents::Change;
use faultline_incidents::report_link::{ReportedFault, link_candidates};
use faultline_incidents::store::Attachment;
use faultline_incidents::ticket::{AttachmentRef, LinkedReport, MailReceived};
use faultline_incidents::ticket::{Customer, NewTicket};
use faultline_incidents::{Command, Inventory};
use faultline_incidents::{Owner, Severity, Ticket, TicketPolicy};
use faultline_wire::config_file::Secret;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tower::ServiceExt;

const NOW: i64 = 1_796_601_600_000;

fn ticket(id: u64, department: Option<&str>) -> Ticket {
    let new = NewTicket {
        rule: "DiskFull".into(),
        target: format!("vm-{id}"),
        summary: format!("disk full on vm-{id}"),
        description: String::new(),
        severity: Severity::P2,
        tag: Some(Owner::Customer),
        reason: "the customer's own VM".into(),
        evidence: None,
        customers: department
            .map(|d| Customer {
                department: d.into(),
                vip: false,
                contacts: Vec::new(),
                language: Default::default(),
                targets: vec![format!("vm-{id}")],
            })
            .into_iter()
            .collect(),
        started_at_ms: NOW,
        opened_by: "rules".into(),
        channel: faultline_incidents::Channel::Monitoring,
        pages: true,
        reporter: None,
    };
    Ticket::open(id, new, &TicketPolicy::default(), NOW).0
}

/// A stage that answers List, Get and Change over `tickets`.
fn stage(mut tickets: Vec<Ticket>) -> mpsc::Sender<Request> {
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            match request {
                Request::List { query, reply } => {
                    let found = tickets
                        .iter()
                        .filter(|t| {
                            query
                                .customer
                                .as_ref()
                                .is_none_or(|d| t.customers.iter().any(|c| &c.department == d))
                        })
                        .filter(|t| query.channel.is_none_or(|c| t.channel == c))
                        .cloned()
                        .collect();
                    let _ = reply.send(Ok(TicketPage {
                        tickets: found,
                        next: None,
                    }));
                }
                Request::Get { id, reply } => {
                    let found = tickets.iter().find(|t| t.id == id).cloned();
                    let _ = reply.send(found.ok_or(Refusal::NotFound(id)));
                }
                Request::Change { id, command, reply } => {
                    let answer = match tickets.iter_mut().find(|t| t.id == id) {
                        None => Err(Refusal::NotFound(id)),
                        Some(t) => match t.apply(command, &TicketPolicy::default(), NOW + 1) {
                            Ok((changed, _)) => {
                                *t = changed.clone();
                                Ok(changed)
                            }
                            Err(e) => Err(Refusal::Conflict(e.to_string())),
                        },
                    };
                    let _ = reply.send(answer);
                }
                Request::LinkCandidates { query, reply } => {
                    let fault = ReportedFault {
                        target: query.target.as_deref(),
                        department: query.department.as_deref(),
                    };
                    let found = link_candidates(&fault, &tickets, &Inventory::default())
                        .into_iter()
                        .filter_map(|c| {
                            let ticket = tickets.iter().find(|t| t.id == c.ticket)?.clone();
                            Some(Candidate {
                                ticket,
                                kind: c.kind,
                                why: c.why,
                            })
                        })
                        .collect();
                    let _ = reply.send(Ok(found));
                }
                Request::LinkReport { id, link, reply } => {
                    let command = Command::LinkReport(Box::new(LinkedReport {
                        by: link.by,
                        channel: link.channel,
                        summary: link.summary,
                        description: link.description,
                        reporter: link.reporter,
                        customer: None,
                    }));
                    let answer = match tickets.iter_mut().find(|t| t.id == id) {
                        None => Err(Refusal::NotFound(id)),
                        Some(t) => t
                            .apply(command, &TicketPolicy::default(), NOW + 1)
                            .map(|(changed, _)| {
                                *t = changed.clone();
                                changed
                            })
                            .map_err(|e| Refusal::Conflict(e.to_string())),
                    };
                    let _ = reply.send(answer);
                }
                Request::Attachment { id, number, reply } => {
                    let kept = tickets
                        .iter()
                        .find(|t| t.id == id)
                        .and_then(|t| mailed(t, number))
                        .map(|a| Attachment {
                            number,
                            name: a.name,
                            content_type: a.content_type,
                            bytes: ATTACHMENT.to_vec(),
                        });
                    let _ = reply.send(kept.ok_or(Refusal::NoAttachment(id, number)));
                }
                _ => {}
            }
        }
    });
    tx
}

/// The bytes the stand-in keeps for every attachment.
const ATTACHMENT: &[u8] = b"disk smart log\n";

/// Attachment `number` as a mail on `ticket`'s timeline lists it.
fn mailed(ticket: &Ticket, number: u32) -> Option<AttachmentRef> {
    ticket
        .timeline
        .iter()
        .find_map(|entry| match &entry.change {
            Change::MailReceived { mail } => mail
                .attachments
                .iter()
                .find(|a| a.number == Some(number))
                .cloned(),
            _ => None,
        })
}

/// `ticket` with a reply mail on its timeline carrying a kept and an over-the-cap attachment.
fn with_mail(ticket: Ticket) -> Ticket {
    let attachment = |number, name: &str| AttachmentRef {
        number,
        name: name.into(),
        content_type: "text/plain".into(),
        size: ATTACHMENT.len() as u64,
    };
    let mail = MailReceived {
        from: "li.wei@finance.gov.example".into(),
        subject: "Re: disk full".into(),
        text: "the log is attached".into(),
        message_id: "<reply@finance.gov.example>".into(),
        attachments: vec![
            attachment(Some(1), "smart.log"),
            attachment(None, "core.dump"),
        ],
    };
    let command = Command::RecordMail(Box::new(mail));
    match ticket.apply(command, &TicketPolicy::default(), NOW) {
        Ok((ticket, _)) => ticket,
        Err(e) => panic!("{e}"),
    }
}

fn console() -> Router {
    let user = |name: &str, role| ApiToken {
        name: name.into(),
        role,
        token: Some(Secret::new(format!("{name}-token"))),
        token_file: None,
    };
    let config = ApiConfig {
        tokens: vec![user("alice", Role::Engineer), user("victor", Role::Viewer)],
        departments: vec![DepartmentLogin {
            department: "finance".into(),
            token: Some(Secret::new("finance-token")),
            token_file: None,
        }],
        time_zone: Some("Asia/Shanghai".into()),
        ..ApiConfig::default()
    };
    let requests = stage(vec![
        with_mail(ticket(1, Some("finance"))),
        ticket(2, Some("hr")),
        ticket(3, None),
    ]);
    let api = Arc::new(Api::new(&config, Some(requests)).unwrap_or_else(|e| panic!("{e}")));
    router(Console::new(api, &config, false).unwrap_or_else(|e| panic!("{e}")))
}

async fn send(router: &Router, request: HttpRequest<Body>) -> (StatusCode, HeaderMap, String) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    (status, headers, body)
}

fn get(path: &str, cookie: &str) -> HttpRequest<Body> {
    HttpRequest::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn post(path: &str, cookie: &str, form: &str) -> HttpRequest<Body> {
    HttpRequest::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Logs in with `token`; the session cookie and the page's CSRF token.
async fn login(router: &Router, token: &str) -> (String, String) {
    let (status, headers, _) = send(
        router,
        post("/console/login", "", &format!("token={token}")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "login with {token}");
    let set = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    let (_, _, page) = send(router, get("/console/tickets", &cookie)).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(csrf.len(), 64, "a CSRF token on the page");
    (cookie, csrf)
}

#[tokio::test]
async fn without_a_session_pages_lead_to_login_and_bad_tokens_are_refused() {
    let router = console();
    let (status, headers, _) = send(&router, get("/console/tickets", "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers.get(header::LOCATION).map(|v| v.as_bytes()),
        Some(&b"/console/login"[..])
    );
    let (status, _, body) = send(&router, post("/console/login", "", "token=nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("login-failed"));
    let (status, _, _) = send(
        &router,
        post("/console/tickets/1/acknowledge", "", "csrf=x"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session, no change");
}

#[tokio::test]
async fn a_department_sees_only_its_own_tickets_read_only() {
    let router = console();
    let (cookie, csrf) = login(&router, "finance-token").await;
    let (status, _, queue) = send(&router, get("/console/tickets?department=hr", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue.contains("vm-1") && !queue.contains("vm-2") && !queue.contains("vm-3"),
        "{queue}"
    );
    let (status, _, page) = send(&router, get("/console/tickets/1", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("id=\"actions\""),
        "no action forms for a department"
    );
    assert!(
        !page.contains("the customer&#x27;s own VM"),
        "no internal reason"
    );
    for other in [
        "/console/tickets/2",
        "/console/tickets/3",
        "/console/tickets/99",
    ] {
        let (status, _, _) = send(&router, get(other, &cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
    }
    let (status, _, _) = send(
        &router,
        post(
            "/console/tickets/1/acknowledge",
            &cookie,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_act() {
    let router = console();
    let (cookie, csrf) = login(&router, "victor-token").await;
    let (status, _, page) = send(&router, get("/console/tickets/2", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("id=\"actions\""));
    let (status, _, _) = send(
        &router,
        post(
            "/console/tickets/2/acknowledge",
            &cookie,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_mailed_attachment_is_linked_and_downloads_only_with_a_session() {
    let router = console();
    let (cookie, _) = login(&router, "victor-token").await;
    let (status, _, page) = send(&router, get("/console/tickets/1", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("href=\"/console/tickets/1/attachments/1\" download>smart.log</a>"),
        "{page}"
    );
    assert!(
        !page.contains("href=\"/console/tickets/1/attachments/2\""),
        "one over the cap was not kept: no link"
    );
    let (status, headers, body) =
        send(&router, get("/console/tickets/1/attachments/1", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_bytes(), ATTACHMENT);
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    assert_eq!(header(header::CONTENT_TYPE), "text/plain");
    assert!(
        header(header::CONTENT_DISPOSITION).starts_with("attachment; filename=")
            && header(header::CONTENT_DISPOSITION).ends_with("smart.log"),
        "{headers:?}"
    );
    let (status, _, _) = send(&router, get("/console/tickets/1/attachments/2", &cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not kept");
    let (status, headers, body) = send(&router, get("/console/tickets/1/attachments/1", "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session: to the login");
    assert_eq!(
        headers.get(header::LOCATION).map(|v| v.as_bytes()),
        Some(&b"/console/login"[..])
    );
    assert!(body.is_empty());
    let (finance, _) = login(&router, "finance-token").await;
    let (_, _, page) = send(&router, get("/console/tickets/1", &finance)).await;
    assert!(
        page.contains("vm-1") && !page.contains("smart.log"),
        "{page}"
    );
    let (status, _, body) = send(&router, get("/console/tickets/1/attachments/1", &finance)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a department's view holds no mails"
    );
    assert!(!body.contains("disk smart log"));
}

#[tokio::test]
async fn an_engineer_acknowledges_and_posts_a_note_with_the_csrf_token() {
    let router = console();
    let (cookie, csrf) = login(&router, "alice-token").await;
    let (status, _, _) = send(
        &router,
        post("/console/tickets/3/acknowledge", &cookie, "csrf=forged"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a forged CSRF token changes nothing"
    );
    let (status, _, _) = send(
        &router,
        post(
            "/console/tickets/3/acknowledge",
            &cookie,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let form = format!("csrf={csrf}&audience=customer&text=replacing+the+disk");
    let (status, _, _) = send(&router, post("/console/tickets/3/note", &cookie, &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&router, get("/console/tickets/3", &cookie)).await;
    assert!(page.contains("replacing the disk"), "{page}");
    assert!(page.contains("Progress update to the customer"));
    assert!(page.contains("2026-12-07 08:00 (UTC+08:00)"), "local times");
    let (status, _, page) = send(
        &router,
        post(
            "/console/tickets/3/assign",
            &cookie,
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the API's parser names the field"
    );
    assert!(page.contains("to:"), "{page}");
}

#[tokio::test]
async fn a_phone_report_of_a_ticketed_fault_is_offered_for_linking_and_linked() {
    let router = console();
    let (cookie, csrf) = login(&router, "alice-token").await;
    let form = format!(
        "csrf={csrf}&channel=phone&target=vm-1&summary=payroll+is+down&severity=P2&tag=&reason="
    );
    let (status, _, page) = send(&router, post("/console/new", &cookie, &form)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"candidate-1\""), "{page}");
    assert!(
        page.contains("vm-1 is this ticket&#x27;s target"),
        "the why: {page}"
    );
    assert!(
        page.contains("action=\"/console/tickets/1/link_report\""),
        "{page}"
    );
    assert!(
        page.contains("name=\"open_anyway\""),
        "a new ticket stays possible"
    );
    let link = format!("csrf={csrf}&channel=phone&target=vm-1&summary=payroll+is+down");
    let (status, headers, _) = send(
        &router,
        post("/console/tickets/1/link_report", &cookie, &link),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers.get(header::LOCATION).map(|v| v.as_bytes()),
        Some(&b"/console/tickets/1"[..])
    );
    let (_, _, page) = send(&router, get("/console/tickets/1", &cookie)).await;
    assert!(page.contains("Report linked"), "{page}");
    assert!(page.contains("payroll is down"), "{page}");
    // A target no open ticket is about: no offer (the stand-in stage opens nothing, so the
    // form goes on to create and the stand-in does not answer that).
    let other = format!("csrf={csrf}&channel=phone&target=vm-9&summary=x&severity=P2");
    let (_, _, page) = send(&router, post("/console/new", &cookie, &other)).await;
    assert!(!page.contains("candidate-"), "{page}");
}

#[tokio::test]
async fn chinese_by_accept_language_or_the_switch() {
    let router = console();
    let (cookie, _) = login(&router, "alice-token").await;
    let request = HttpRequest::get("/console/tickets")
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9")
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, _, page) = send(&router, request).await;
    assert!(page.contains("工单队列") && page.contains("lang=\"zh-CN\""));
    let (status, headers, _) = send(&router, get("/console/lang?to=zh-CN&back=//evil", "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers.get(header::LOCATION).map(|v| v.as_bytes()),
        Some(&b"/console/tickets"[..])
    );
    let (_, _, page) = send(
        &router,
        get(
            "/console/tickets",
            &format!("{cookie}; faultline_lang=zh-CN"),
        ),
    )
    .await;
    assert!(page.contains("工单队列"));
}

#[tokio::test]
async fn the_queue_passes_role_and_channel_filters_and_shows_them() {
    let router = console();
    let (cookie, _) = login(&router, "alice-token").await;
    let (status, _, page) = send(
        &router,
        get("/console/tickets?channel=phone&role=vm", &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<option value="phone" selected>"#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="vm" selected>"#), "{page}");
    assert!(
        page.contains("id=\"no-tickets\""),
        "no ticket came by phone: {page}"
    );
    let (_, _, page) = send(&router, get("/console/tickets?channel=monitoring", &cookie)).await;
    assert!(page.contains("ticket-row"), "{page}");
    let (status, _, _) = send(&router, get("/console/tickets?role=toaster", &cookie)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown role is refused"
    );
}

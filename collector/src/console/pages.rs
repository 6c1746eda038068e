//! The console's pages ([`super`]): the queue with its filters and paging, the ticket page, the
//! action forms, the manual report and the download of a ticket's kept attachments. Each reads
//! and changes tickets through the shared [`crate::api::Api`] with the API's own parsers and role
//! checks; a department is held to its own tickets here.

use super::{Console, Visitor, csrf_matches};
use crate::api::{
    CandidateQuery, Denied, Refusal, attachment_number, attachment_response, manual_report,
    parse_query, ticket_id,
};
use crate::config::Role;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use faultline_incidents::Ticket;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Tickets on one page of the queue.
const PAGE_SIZE: usize = 25;
/// The queue's filters and the API's name for each.
const FILTERS: [(&str, &str); 7] = [
    ("state", "state"),
    ("tag", "tag"),
    ("severity", "severity"),
    ("role", "role"),
    ("department", "customer"),
    ("site", "site"),
    ("channel", "channel"),
];

/// `GET /console/tickets`: the queue, newest first, filtered and paged by the store's cursor.
pub(super) async fn queue(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    let given: BTreeMap<String, String> =
        form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let api_query = api_query(&given, visitor.department());
    let page = match parse_query(&api_query) {
        Ok(query) => console.api.list(query).await,
        Err(refusal) => Err(refusal),
    };
    let page = match page {
        Ok(page) => page,
        Err(refusal) => return refused(&console, &visitor, &refusal),
    };
    let filters: BTreeMap<&str, String> = FILTERS
        .iter()
        .map(|(name, _)| (*name, given.get(*name).cloned().unwrap_or_default()))
        .collect();
    let (first, next) = paging(&filters, page.next);
    let rows: Vec<_> = page
        .tickets
        .iter()
        .map(|t| console.renderer.row(t))
        .collect();
    console.page(
        StatusCode::OK,
        "queue.html",
        visitor.lang,
        Some(&visitor),
        minijinja::context! {
            rows => rows,
            filters => filters,
            roles => faultline_incidents::inventory::TargetRole::ALL.map(|r| r.as_str()),
            channels => faultline_incidents::Channel::ALL.map(|c| c.as_str()),
            next => next,
            paged => given.contains_key("before"),
            first => first,
            back => format!("/console/tickets?{}", raw.unwrap_or_default()),
        },
    )
}

/// The API query of the queue's filters (a department's own always), newest [`PAGE_SIZE`] first.
fn api_query(given: &BTreeMap<String, String>, department: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, api_name) in FILTERS {
        let value = match (name, department) {
            ("department", Some(own)) => Some(own),
            _ => given.get(name).map(String::as_str),
        };
        if let Some(value) = value {
            query.append_pair(api_name, value);
        }
    }
    if let Some(before) = given.get("before") {
        query.append_pair("before", before);
    }
    query.append_pair("limit", &PAGE_SIZE.to_string());
    query.finish()
}

/// The links of the queue: the first page with the filters, and the next (older) page.
fn paging(filters: &BTreeMap<&str, String>, next: Option<u64>) -> (String, Option<String>) {
    let mut link = form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        link.append_pair(name, value);
    }
    let first = link.finish();
    let next = next.map(|cursor| {
        let mut link = form_urlencoded::Serializer::new(first.clone());
        link.append_pair("before", &cursor.to_string());
        link.finish()
    });
    (first, next)
}

/// The ticket `id` if the visitor may see it: a department only its own (404 otherwise, as if it
/// did not exist).
async fn visible(console: &Console, visitor: &Visitor, id: &str) -> Result<Ticket, Refusal> {
    let id = ticket_id(id)?;
    let ticket = console.api.ticket(id).await?;
    match visitor.department() {
        Some(own) if !ticket.customers.iter().any(|c| c.department == own) => {
            tracing::info!(department = %own, ticket = id, "department asked for another's ticket");
            Err(Refusal::NotFound(id))
        }
        _ => Ok(ticket),
    }
}

/// `GET /console/tickets/{id}`: timeline, evidence, the reason for its tag and, for engineers, the
/// action forms.
pub(super) async fn ticket(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    let ticket = match visible(&console, &visitor, &id).await {
        Ok(ticket) => ticket,
        Err(refusal) => return refused(&console, &visitor, &refusal),
    };
    let department = visitor.department().is_some();
    let can_act = visitor.principal.permit(Role::Engineer).is_ok();
    console.page(
        StatusCode::OK,
        "ticket.html",
        visitor.lang,
        Some(&visitor),
        minijinja::context! {
            t => console.renderer.detail(&ticket, department),
            can_act => can_act,
            back => format!("/console/tickets/{}", ticket.id),
        },
    )
}

/// `GET /console/tickets/{id}/attachments/{number}`: an attachment kept with a ticket, answered
/// as the API answers it. Not for a department: its view holds no mails (404, as if none).
pub(super) async fn attachment(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Path((id, number)): Path<(String, String)>,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    let file = async {
        let id = ticket_id(&id)?;
        let number = attachment_number(&number)?;
        if visitor.department().is_some() {
            return Err(Refusal::NoAttachment(id, number));
        }
        console.api.attachment(id, number).await
    }
    .await;
    match file {
        Ok(file) => attachment_response(file),
        Err(refusal) => refused(&console, &visitor, &refusal),
    }
}

/// The fields of an action form as the API's JSON body: blank fields left out (a missing required
/// one is then named by the API's parser), the CSRF token and the audience choice taken out.
fn form_body(form: &BTreeMap<String, String>) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = form
        .iter()
        .filter(|(k, v)| {
            !matches!(k.as_str(), "csrf" | "audience" | "open_anyway") && !v.trim().is_empty()
        })
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::to_vec(&object).unwrap_or_default()
}

/// Checks the role and the CSRF token of a form POST; the user who may make the change.
fn authorize<'a>(
    console: &Console,
    visitor: &'a Visitor,
    form: &BTreeMap<String, String>,
) -> Result<&'a crate::api::User, Box<Response>> {
    let forbidden =
        |message: &str| Box::new(console.error(StatusCode::FORBIDDEN, visitor, message));
    let user = visitor
        .principal
        .permit(Role::Engineer)
        .map_err(|denied| forbidden(&denied.to_string()))?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !csrf_matches(visitor, sent) {
        return Err(forbidden("CSRF token mismatch"));
    }
    Ok(user)
}

/// `POST /console/tickets/{id}/{action}`: one of the API's actions; `note` posts a progress note,
/// internal (`comment`) or for the customer (`progress`) as the form's `audience` says.
pub(super) async fn act(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    let user = match authorize(&console, &visitor, &form) {
        Ok(user) => user,
        Err(denied) => return *denied,
    };
    let action = match (action.as_str(), form.get("audience").map(String::as_str)) {
        ("note", Some("customer")) => "progress",
        ("note", _) => "comment",
        (other, _) => other,
    };
    let changed = async {
        let id = ticket_id(&id)?;
        console.api.act(user, id, action, &form_body(&form)).await
    }
    .await;
    match changed {
        Ok(ticket) => Redirect::to(&format!("/console/tickets/{}", ticket.id)).into_response(),
        Err(refusal) => refused(&console, &visitor, &refusal),
    }
}

/// `GET /console/new`: the form for a fault reported by phone.
pub(super) async fn new_form(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    if let Err(Denied::Forbidden(message)) = visitor.principal.permit(Role::Engineer) {
        return console.error(StatusCode::FORBIDDEN, &visitor, &message);
    }
    console.page(
        StatusCode::OK,
        "new.html",
        visitor.lang,
        Some(&visitor),
        minijinja::context! { back => "/console/new" },
    )
}

/// `POST /console/new`: opens the reported ticket and shows it.
pub(super) async fn create(
    State(console): State<Arc<Console>>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let visitor = match console.visitor(&jar, &headers) {
        Ok(visitor) => visitor,
        Err(to_login) => return to_login.into_response(),
    };
    let user = match authorize(&console, &visitor, &form) {
        Ok(user) => user,
        Err(denied) => return *denied,
    };
    // A report that may be the fault of an open automatic ticket: offer to link it first.
    if !form.contains_key("open_anyway") {
        let query = CandidateQuery {
            target: form.get("target").filter(|t| !t.trim().is_empty()).cloned(),
            department: None,
        };
        match console.api.link_candidates(query).await {
            Ok(candidates) if !candidates.is_empty() => {
                let offers: Vec<_> = candidates
                    .iter()
                    .map(|c| {
                        minijinja::context! {
                            t => console.renderer.detail(&c.ticket, false),
                            why => c.why,
                        }
                    })
                    .collect();
                let report: BTreeMap<&String, &String> =
                    form.iter().filter(|(k, _)| k.as_str() != "csrf").collect();
                return console.page(
                    StatusCode::OK,
                    "link.html",
                    visitor.lang,
                    Some(&visitor),
                    minijinja::context! { candidates => offers, report => report, back => "/console/new" },
                );
            }
            Ok(_) => {}
            Err(refusal) => return refused(&console, &visitor, &refusal),
        }
    }
    let created = async {
        let report = manual_report(&form_body(&form), user.name.clone())?;
        console.api.create(user, report).await
    }
    .await;
    match created {
        Ok(ticket) => Redirect::to(&format!("/console/tickets/{}", ticket.id)).into_response(),
        Err(refusal) => refused(&console, &visitor, &refusal),
    }
}

fn refused(console: &Console, visitor: &Visitor, refusal: &Refusal) -> Response {
    console.error(refusal.status(), visitor, &refusal.to_string())
}

//! What a parsed mail is to the queue (mailbox parse → **classify** → incidents): automatic mail
//! that must never open a ticket nor get an answer (auto-replies, bounces, mailing lists, our own
//! mails coming back), and which ticket a reply belongs to ([`thread_of`]: the `[FL-<id>]` token
//! in its subject, or a Faultline Message-ID in In-Reply-To / References). Pure functions.

use super::parse::IncomingMail;

/// Why a mail is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Automatic {
    /// An auto-reply (out of office, an autoresponder).
    AutoReply,
    /// A delivery status notification.
    Bounce,
    /// Bulk or list mail.
    Bulk,
    /// One of Faultline's own mails (a loop).
    Loop,
}

impl Automatic {
    /// Name as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Automatic::AutoReply => "auto_reply",
            Automatic::Bounce => "bounce",
            Automatic::Bulk => "bulk",
            Automatic::Loop => "loop",
        }
    }
}

/// The subject token prefix of a ticket number: `[FL-1234]`.
pub const TOKEN: &str = "FL-";

/// Whether `mail` is automatic (RFC 3834 `Auto-Submitted`, `Precedence`, Microsoft's
/// auto-response headers, an RFC 3464 report or a null return path, our own marker header),
/// and which kind; `None` for a mail a person wrote.
pub fn automatic(mail: &IncomingMail) -> Option<Automatic> {
    let header = |name: &'static str| values(mail, name);
    if header("x-faultline-ticket").next().is_some() {
        return Some(Automatic::Loop);
    }
    let local = mail.from.split('@').next().unwrap_or_default();
    if header("content-type").any(|v| v == "multipart/report")
        || header("return-path").any(|v| v == "<>")
        || ["mailer-daemon", "postmaster"].contains(&local)
    {
        return Some(Automatic::Bounce);
    }
    if header("auto-submitted").any(|v| !v.starts_with("no"))
        || header("x-autoreply").next().is_some()
        || header("x-autorespond").next().is_some()
        || header("x-auto-response-suppress").any(|v| v.contains("all") || v.contains("oof"))
        || header("precedence").any(|v| v == "auto_reply")
    {
        return Some(Automatic::AutoReply);
    }
    if header("precedence").any(|v| ["bulk", "junk", "list"].contains(&v.as_str())) {
        return Some(Automatic::Bulk);
    }
    None
}

/// The lower-case values of `mail`'s automatic-mail header `name`.
fn values<'a>(mail: &'a IncomingMail, name: &'a str) -> impl Iterator<Item = String> + 'a {
    mail.automatic
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.to_ascii_lowercase())
}

/// The ticket a mail belongs to: the first `[FL-<id>]` token in its subject, else the first
/// Faultline Message-ID (`…faultline-ticket-<id>…@faultline`) among `references` (In-Reply-To
/// and References). A mail whose references name only other mails (the reporter's own first
/// mail) is found through the store instead.
pub fn thread_of(references: &[String], subject: &str) -> Option<u64> {
    let token = subject.match_indices('[').find_map(|(i, _)| {
        let rest = &subject[i + 1..];
        let rest = rest
            .get(..TOKEN.len())
            .filter(|p| p.eq_ignore_ascii_case(TOKEN))
            .map(|_| &rest[TOKEN.len()..])?;
        let (digits, tail) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
        tail.starts_with(']').then(|| digits.parse().ok()).flatten()
    });
    token.or_else(|| {
        references.iter().find_map(|id| {
            let inner = id.trim().strip_prefix('<')?.strip_suffix("@faultline>")?;
            let (_, after) = inner.split_once("faultline-ticket-")?;
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, headers: &[(&str, &str)]) -> IncomingMail {
        IncomingMail {
            message_id: "<m@x>".into(),
            from: from.into(),
            from_name: String::new(),
            subject: "s".into(),
            text: String::new(),
            references: Vec::new(),
            automatic: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn automatic_mail_is_told_apart_table() {
        use Automatic::*;
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<Automatic>,
        );
        let cases: [Case<'_>; 12] = [
            (
                "a person",
                "li@example.com",
                &[("content-type", "text/plain")],
                None,
            ),
            (
                "explicitly not automatic",
                "li@example.com",
                &[("auto-submitted", "no")],
                None,
            ),
            (
                "out of office",
                "li@example.com",
                &[("auto-submitted", "auto-replied")],
                Some(AutoReply),
            ),
            (
                "generated",
                "li@example.com",
                &[("auto-submitted", "auto-generated")],
                Some(AutoReply),
            ),
            (
                "exchange oof",
                "li@example.com",
                &[("x-auto-response-suppress", "All")],
                Some(AutoReply),
            ),
            (
                "x-autoreply",
                "li@example.com",
                &[("x-autoreply", "yes")],
                Some(AutoReply),
            ),
            (
                "dsn",
                "li@example.com",
                &[("content-type", "multipart/report")],
                Some(Bounce),
            ),
            (
                "mailer-daemon",
                "mailer-daemon@mx.example.com",
                &[],
                Some(Bounce),
            ),
            (
                "null return path",
                "li@example.com",
                &[("return-path", "<>")],
                Some(Bounce),
            ),
            (
                "list",
                "li@example.com",
                &[("precedence", "bulk")],
                Some(Bulk),
            ),
            (
                "our own acknowledgement",
                "li@example.com",
                &[
                    ("x-faultline-ticket", "7"),
                    ("auto-submitted", "auto-replied"),
                ],
                Some(Loop),
            ),
            (
                "precedence auto_reply",
                "li@example.com",
                &[("precedence", "auto_reply")],
                Some(AutoReply),
            ),
        ];
        for (what, from, headers, want) in cases {
            assert_eq!(automatic(&mail(from, headers)), want, "{what}");
        }
    }

    #[test]
    fn thread_of_finds_the_ticket_table() {
        let refs = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&str, Vec<String>, &str, Option<u64>); 9] = [
            ("token", refs(&[]), "Re: [FL-1234] printer", Some(1234)),
            ("token, any case", refs(&[]), "AW: [fl-7] x", Some(7)),
            ("first token wins", refs(&[]), "[FL-3] and [FL-4]", Some(3)),
            ("not a token", refs(&[]), "[FL-] [FL-x] FL-9 [FL-12", None),
            ("no token, nothing", refs(&[]), "printer broken", None),
            (
                "in-reply-to our acknowledgement",
                refs(&["<mail.faultline-ticket-42.trigger.0.reporter@faultline>"]),
                "Re: printer",
                Some(42),
            ),
            (
                "our thread reference",
                refs(&["<x@example.com>", "<faultline-ticket-9@faultline>"]),
                "Re: printer",
                Some(9),
            ),
            (
                "a look-alike of another domain",
                refs(&["<faultline-ticket-9@faultline.example.com>"]),
                "x",
                None,
            ),
            (
                "the token beats references",
                refs(&["<faultline-ticket-9@faultline>"]),
                "[FL-5]",
                Some(5),
            ),
        ];
        for (what, references, subject, want) in cases {
            assert_eq!(thread_of(&references, subject), want, "{what}");
        }
    }
}

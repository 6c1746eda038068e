//! Raw mail → what the repair mailbox takes in (IMAP → **mailbox parse** → classify → incidents):
//! RFC 5322 bytes become an [`IncomingMail`] — sender, subject, plain text (HTML converted),
//! threading headers, attachments — or a [`Quarantine`] with the reason, never a panic.
//!
//! Decoding is mail-parser's (MIME structure, RFC 2047 words, transfer encodings) with every
//! charset encoding_rs knows, GB2312 / GBK / GB18030 included. A text part in a charset nobody
//! knows is quarantined, not guessed: the mail is kept on the server for a person to read.
//! A mail without a Message-ID gets one derived from its bytes, so a re-fetch is the same mail.

use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// A mail fit to become a ticket or a timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMail {
    /// Message-ID with its angle brackets (derived from the bytes when the mail has none).
    pub message_id: String,
    /// Sender's address, lower case.
    pub from: String,
    /// Sender's display name (may be empty).
    pub from_name: String,
    /// Subject (empty when none).
    pub subject: String,
    /// Plain-text body (HTML converted to text).
    pub text: String,
    /// In-Reply-To and References, each with angle brackets, in header order.
    pub references: Vec<String>,
    /// The headers that tell automatic mail: (lower-case name, value) of `Auto-Submitted`,
    /// `Precedence`, `X-Auto-Response-Suppress`, `X-Autoreply`, `X-Autorespond`,
    /// `X-Faultline-Ticket`, `Return-Path` and the top-level content type (`multipart/report`).
    pub automatic: Vec<(String, String)>,
    /// Attachments as sent.
    pub attachments: Vec<Part>,
}

/// One attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// File name (`attachment-<n>` when it has none).
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Decoded content.
    pub bytes: Vec<u8>,
}

/// A mail that cannot be taken in: moved to the quarantine folder, counted, logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// Its Message-ID, when one could be read.
    pub message_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// Headers kept for [`crate::mailbox::classify`].
const AUTOMATIC_HEADERS: [&str; 7] = [
    "auto-submitted",
    "precedence",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-faultline-ticket",
    "return-path",
];

/// Parses one raw mail of at most `max_bytes`.
pub fn parse(raw: &[u8], max_bytes: usize) -> Result<IncomingMail, Quarantine> {
    let quarantine = |message_id: Option<String>, reason: String| Quarantine { message_id, reason };
    let Some(message) = MessageParser::default().parse(raw) else {
        return Err(quarantine(
            None,
            "not a mail: no header could be read".into(),
        ));
    };
    let message_id = message.message_id().map(|id| format!("<{id}>"));
    if raw.len() > max_bytes {
        return Err(quarantine(
            message_id,
            format!("{} bytes, over max_mail_bytes {max_bytes}", raw.len()),
        ));
    }
    let Some(sender) = message.from().and_then(|a| a.first()) else {
        return Err(quarantine(message_id, "no From address".into()));
    };
    let Some(from) = sender.address() else {
        return Err(quarantine(message_id, "no From address".into()));
    };
    for part in &message.parts {
        if !part.is_text() {
            continue;
        }
        if let Some(charset) = part.content_type().and_then(|c| c.attribute("charset"))
            && encoding_rs::Encoding::for_label(charset.trim().as_bytes()).is_none()
        {
            return Err(quarantine(
                message_id,
                format!("unknown charset `{charset}`"),
            ));
        }
    }
    let message_id = message_id.unwrap_or_else(|| {
        let digest = Sha256::digest(raw);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("<{hex}@no-message-id.faultline.invalid>")
    });
    let mut references = Vec::new();
    for header in [message.in_reply_to(), message.references()] {
        if let Some(ids) = header.as_text_list() {
            references.extend(ids.iter().map(|id| format!("<{id}>")));
        } else if let Some(id) = header.as_text() {
            references.push(format!("<{id}>"));
        }
    }
    let mut automatic: Vec<(String, String)> = message
        .headers()
        .iter()
        .filter_map(|h| {
            let name = h.name().to_ascii_lowercase();
            if !AUTOMATIC_HEADERS.contains(&name.as_str()) {
                return None;
            }
            let value = match h.value() {
                mail_parser::HeaderValue::Address(a) => a
                    .first()
                    .and_then(|a| a.address())
                    .map(|a| format!("<{a}>"))
                    .unwrap_or_else(|| "<>".into()),
                other => other.as_text().unwrap_or_default().to_string(),
            };
            Some((name, value.trim().to_string()))
        })
        .collect();
    if let Some(ct) = message.content_type() {
        let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default());
        automatic.push(("content-type".into(), kind.to_ascii_lowercase()));
    }
    // Malformed MIME (a boundary never closed) can leave the only text as an unnamed part.
    let text = message
        .body_text(0)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            message
                .attachments()
                .find(|a| a.is_text() && a.attachment_name().is_none())
                .and_then(|a| a.text_contents().map(|t| t.trim().to_string()))
        })
        .unwrap_or_default();
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(i, a)| Part {
            name: a
                .attachment_name()
                .map_or_else(|| format!("attachment-{}", i + 1), str::to_string),
            content_type: a.content_type().map_or_else(
                || "application/octet-stream".to_string(),
                |c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")),
            ),
            bytes: a.contents().to_vec(),
        })
        .collect();
    Ok(IncomingMail {
        message_id,
        from: from.trim().to_ascii_lowercase(),
        from_name: sender.name().unwrap_or_default().trim().to_string(),
        subject: message.subject().unwrap_or_default().trim().to_string(),
        text,
        references,
        automatic,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    /// `text` encoded in `charset` (encoding_rs), as base64.
    fn encoded(text: &str, charset: &str) -> String {
        use base64::Engine;
        let encoding = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
        let (bytes, _, unmappable) = encoding.encode(text);
        assert!(!unmappable, "{charset} cannot encode {text}");
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    }

    fn chinese(charset: &str) -> String {
        use base64::Engine;
        let (subject, _, _) = encoding_rs::Encoding::for_label(charset.as_bytes())
            .unwrap()
            .encode("打印机故障");
        format!(
            "From: =?{charset}?B?{}?= <li.wei@finance.gov.example>\r\n\
             To: repair@faultline.example\r\n\
             Subject: =?{charset}?B?{}?=\r\n\
             Message-ID: <zh-{charset}@finance.gov.example>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset={charset}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            encoded("李伟", charset),
            base64::engine::general_purpose::STANDARD.encode(&subject),
            encoded("三楼的打印机无法连接网络。", charset),
        )
    }

    const HTML: &str = "From: Ana <ana@example.com>\r\n\
Subject: VPN down\r\n\
Message-ID: <html-1@example.com>\r\n\
In-Reply-To: <faultline-ticket-7@faultline>\r\n\
References: <a@example.com> <b@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><p>The <b>VPN</b> is down.</p><script>x()</script></body></html>\r\n\
--b1\r\n\
Content-Type: image/png; name=\"screen.png\"\r\n\
Content-Disposition: attachment; filename=\"screen.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgo=\r\n\
--b1--\r\n";

    #[test]
    fn chinese_charsets_html_and_attachments_are_decoded() {
        for charset in ["GB2312", "GBK", "GB18030"] {
            let mail = parse(chinese(charset).as_bytes(), MAX).unwrap();
            assert_eq!(mail.subject, "打印机故障", "{charset}");
            assert_eq!(mail.text, "三楼的打印机无法连接网络。", "{charset}");
            assert_eq!(mail.from_name, "李伟", "{charset}");
            assert_eq!(mail.from, "li.wei@finance.gov.example");
            assert_eq!(
                mail.message_id,
                format!("<zh-{charset}@finance.gov.example>")
            );
        }
        let mail = parse(HTML.as_bytes(), MAX).unwrap();
        assert!(mail.text.contains("The VPN is down."), "{}", mail.text);
        assert!(!mail.text.contains('<'), "{}", mail.text);
        assert_eq!(
            mail.references,
            [
                "<faultline-ticket-7@faultline>",
                "<a@example.com>",
                "<b@example.com>"
            ]
        );
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].name, "screen.png");
        assert_eq!(mail.attachments[0].content_type, "image/png");
        assert_eq!(mail.attachments[0].bytes, b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn bad_mail_is_quarantined_with_its_reason() {
        let unknown = chinese("GB2312").replace("charset=GB2312", "charset=x-klingon");
        let no_id = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        let cases: [(&str, &[u8], usize, Option<&str>); 4] = [
            ("garbage", b"", MAX, None),
            (
                "no sender",
                b"Subject: x\r\nMessage-ID: <n@x>\r\n\r\nbody",
                MAX,
                Some("no From"),
            ),
            (
                "unknown charset",
                unknown.as_bytes(),
                MAX,
                Some("x-klingon"),
            ),
            (
                "oversized",
                HTML.as_bytes(),
                100,
                Some("over max_mail_bytes"),
            ),
        ];
        for (what, raw, max, reason) in cases {
            match (parse(raw, max), reason) {
                (Err(q), Some(reason)) => assert!(q.reason.contains(reason), "{what}: {q:?}"),
                (Err(_), None) => {}
                (Ok(mail), _) => panic!("{what}: taken in: {mail:?}"),
            }
        }
        // A mail without a Message-ID gets a stable one from its bytes.
        let a = parse(no_id.as_bytes(), MAX).unwrap();
        let b = parse(no_id.as_bytes(), MAX).unwrap();
        assert_eq!(a.message_id, b.message_id);
        assert!(a.message_id.ends_with("@no-message-id.faultline.invalid>"));
        // Malformed MIME (a boundary never closed) still yields its text.
        let broken = "From: b@example.com\r\nMessage-ID: <m@x>\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhalf a mail";
        let mail = parse(broken.as_bytes(), MAX).unwrap();
        assert!(mail.text.contains("half a mail"), "{mail:?}");
    }
}

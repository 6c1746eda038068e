//! Real notification receivers on 127.0.0.1 for the tests of every crate: a recording HTTP
//! server that answers like the services Faultline posts to (webhooks, Alertmanager, PagerDuty,
//! group robots, a ticket system) and can be told to fail, and Python's stdlib SMTP server.
//! Both stop when dropped.

use crate::wait_until;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// One request the [`Receiver`] saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Status the server answered.
    pub status: u16,
}

impl Seen {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// Answered with a 2xx status.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The notification kind of a Faultline HTTP delivery, from its `Idempotency-Key`
    /// (`<channel>:<dedup key>:<kind>:<occurrence>`; a dedup key may hold colons itself).
    pub fn kind(&self) -> &str {
        self.header("idempotency-key")
            .rsplit(':')
            .nth(1)
            .unwrap_or("")
    }
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Answer 503 to this many more requests.
    fail_next: usize,
    /// Answer 503 to everything while set.
    down: bool,
    tickets: u64,
}

/// A recording HTTP server on 127.0.0.1.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long `/sink/slow` takes to answer a create.
pub const SLOW: Duration = Duration::from_secs(2);

/// Answers by path: robots answer with their error-code bodies, `/pagerduty` 202, `/sink/issue`
/// creates a ticket `OPS-<n>`, `/sink/noid` creates one without saying its id, `/sink/slow`
/// creates one but answers only after [`SLOW`], `/sink/search` finds the last ticket created;
/// the rest 200.
fn answer(state: &mut State, method: &str, path: &str) -> (u16, String) {
    if state.down || state.fail_next > 0 {
        state.fail_next = state.fail_next.saturating_sub(1);
        return (503, "receiver down".into());
    }
    match (method, path) {
        ("POST", "/sink/issue" | "/sink/slow") => {
            state.tickets += 1;
            (
                201,
                format!(r#"{{"id":"1000{0}","key":"OPS-{0}"}}"#, state.tickets),
            )
        }
        ("GET", "/sink/search") => match state.tickets {
            0 => (200, r#"{"issues":[]}"#.into()),
            n => (200, format!(r#"{{"issues":[{{"key":"OPS-{n}"}}]}}"#)),
        },
        (_, "/robot/wecom" | "/robot/dingtalk") => (200, r#"{"errcode":0,"errmsg":"ok"}"#.into()),
        (_, "/robot/feishu") => (200, r#"{"code":0,"msg":"success"}"#.into()),
        (_, "/pagerduty") => (
            202,
            r#"{"status":"success","message":"Event processed"}"#.into(),
        ),
        ("POST", "/sink/noid") => (201, "{}".into()),
        _ => (200, "ok".into()),
    }
}

async fn serve(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> hyper::Result<Response<Full<Bytes>>> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let path = uri.split('?').next().unwrap_or("").to_string();
    let slow = method == "POST" && path == "/sink/slow";
    let (status, text) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, text) = answer(&mut state, &method, &path);
        state.seen.push(Seen {
            method,
            uri,
            headers,
            body,
            status,
        });
        (status, text)
    };
    if slow {
        tokio::time::sleep(SLOW).await;
    }
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = service_fn(move |req| serve(state.clone(), req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Ok(Receiver { addr, state, task })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// Answers 503 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.state().fail_next = n;
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Requests on paths starting with `prefix`, in arrival order.
    pub fn received(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path().starts_with(prefix))
            .collect()
    }

    /// Requests answered with success on paths starting with `prefix`.
    pub fn accepted(&self, prefix: &str) -> Vec<Seen> {
        self.received(prefix)
            .into_iter()
            .filter(Seen::accepted)
            .collect()
    }

    /// Notification kinds (see [`Seen::kind`]) of the accepted requests on `prefix`.
    pub fn accepted_kinds(&self, prefix: &str) -> Vec<String> {
        self.accepted(prefix)
            .iter()
            .map(|s| s.kind().to_string())
            .collect()
    }

    /// Waits (at most 10 s) until `check` holds; panics with every request seen otherwise.
    pub async fn wait(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let ok = wait_until(Duration::from_secs(10), || {
            let ok = check(self);
            async move { ok }
        })
        .await;
        assert!(ok, "{what}: {:#?}", self.seen());
    }
}

/// Python's stdlib SMTP server (`smtpd`, Python ≤ 3.11) on 127.0.0.1, printing every received
/// envelope and message as one JSON line, which a reader thread collects as they arrive. Killed
/// when dropped.
pub struct SmtpSink {
    /// Where it listens.
    pub port: u16,
    child: Child,
    messages: Arc<Mutex<Vec<serde_json::Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

const SMTP_SERVER: &str = r#"
import asyncore, json, smtpd, sys, warnings
warnings.simplefilter("ignore")
class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        print(json.dumps({"from": mailfrom, "to": rcpttos, "data": text}), flush=True)
Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
print("ready", flush=True)
asyncore.loop()
"#;

impl SmtpSink {
    /// Starts the server on `port` and waits (at most 10 s) until it accepts connections.
    pub fn start(port: u16) -> anyhow::Result<SmtpSink> {
        let mut child = Command::new("python3")
            .args(["-W", "ignore", "-c", SMTP_SERVER, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "python3 is needed for the SMTP test server (Python 3.11 with smtpd): {e}"
                )
            })?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stdout.take().map(|stdout| {
            let messages = messages.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(message) = serde_json::from_str(&line) {
                        messages
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(message);
                    }
                }
            })
        });
        let mut sink = SmtpSink {
            port,
            child,
            messages,
            reader,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = sink.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = sink.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                anyhow::bail!(
                    "python3 SMTP server exited ({status}); Python 3.11's smtpd module is needed:\n{err}"
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(sink);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "SMTP server did not start in 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A `[[notify.channels]]` e-mail channel named `name` that sends to this server in plain
    /// SMTP from `faultline@example.com`, its ticket mailbox `noc@example.com` (config text).
    pub fn channel(&self, name: &str) -> String {
        format!(
            r#"
[[notify.channels]]
name = "{name}"
[notify.channels.email]
host = "127.0.0.1"
port = {}
tls = "none"
from = "Faultline <faultline@example.com>"
mailbox = ["noc@example.com"]
"#,
            self.port
        )
    }

    /// The messages received so far (`from`, `to`, `data`), in arrival order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the server and returns the messages it received (`from`, `to`, `data`).
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.received()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

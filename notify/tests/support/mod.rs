//! Real receivers on 127.0.0.1 for the notification tests: a recording HTTP server that can be
//! told to fail, and Python's stdlib SMTP server. Both stop when dropped.

#![allow(dead_code)] // each test binary uses part of the support code

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Status the server answered.
    pub status: u16,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
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

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
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
                                let mut state = state.lock().unwrap();
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
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail_next = n;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests answered with success, for one path prefix.
    pub fn accepted(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path().starts_with(prefix) && (200..300).contains(&s.status))
            .collect()
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Python's stdlib SMTP server (`smtpd`, Python ≤ 3.11) on 127.0.0.1, printing every received
/// envelope and message as one JSON line. Killed when dropped.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
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
    pub fn start(port: u16) -> SmtpSink {
        let child = Command::new("python3")
            .args(["-W", "ignore", "-c", SMTP_SERVER, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("python3 is needed for the SMTP test server (Python 3.11 with smtpd): {e}")
            });
        let mut sink = SmtpSink { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = sink.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = sink.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!(
                    "python3 SMTP server exited ({status}); Python 3.11's smtpd module is needed:\n{err}"
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            assert!(
                Instant::now() < deadline,
                "SMTP server did not start in 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and returns the messages it received.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        out.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

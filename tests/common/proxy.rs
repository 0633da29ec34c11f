//! A fault-injecting HTTP proxy between s3wal and a real S3 server.
//!
//! It is not a fake S3: every request it lets through is answered by the
//! real server. Per request, a rule chosen by the test decides whether to
//! forward it or to answer with an error status instead. One request per
//! connection keeps the framing trivial (`Connection: close` both ways).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass it to the server and its answer back.
    Forward,
    /// Answer `status` with an S3 error `code`, without forwarding.
    Answer(u16, &'static str),
    /// Answer `status` with exactly this body, without forwarding.
    Raw(u16, &'static [u8]),
    /// Announce a longer body than is sent, then close: a truncated answer.
    Truncated(u16, &'static [u8]),
    /// Pass it to the server, then close without answering: a lost ack.
    LoseAnswer,
    /// Close the connection at once, without forwarding.
    Reset,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward without this header, as a store that ignores it would.
    Strip(&'static str),
}

/// The method and path (without query string) of a request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Fault,
}

type Rule = Box<dyn FnMut(&str, &str) -> Fault + Send>;

/// A running proxy; it lives as long as the test process.
pub struct FaultProxy {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) that asks
    /// `rule(method, path)` what to do with each request.
    pub fn start(
        upstream: &str,
        rule: impl FnMut(&str, &str) -> Fault + Send + 'static,
    ) -> FaultProxy {
        FaultProxy::serve(upstream, None, rule)
    }

    /// A proxy that speaks HTTPS with `tls` to s3wal, as
    /// `https://localhost:PORT`, and forwards every request.
    pub fn start_tls(upstream: &str, tls: Arc<rustls::ServerConfig>) -> FaultProxy {
        FaultProxy::serve(upstream, Some(tls), |_, _| Fault::Forward)
    }

    fn serve(
        upstream: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        rule: impl FnMut(&str, &str) -> Fault + Send + 'static,
    ) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(rule)));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule, log) = (upstream.clone(), Arc::clone(&rule), Arc::clone(&log));
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    Some(config) => {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        let stream = rustls::StreamOwned::new(connection, client);
                        handle(stream, &upstream, &rule, &log);
                    }
                    None => {
                        handle(&client, &upstream, &rule, &log);
                        let _ = client.shutdown(Shutdown::Both);
                    }
                });
            }
        });
        FaultProxy { endpoint, seen }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request, applies the rule, answers, and closes.
fn handle(client: impl Read + Write, upstream: &str, rule: &Mutex<Rule>, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(client);
    let Some((mut head, mut body)) = read_request(&mut reader) else {
        return;
    };
    let (mut method, mut path) = method_and_path(&head);
    if method == "CONNECT" {
        // A client behind HTTP_PROXY tunnels even plain HTTP: open the
        // tunnel, and take the request that comes through it. The tunnel
        // always leads to `upstream`, the one server under test.
        log.lock().unwrap().push(Seen {
            method,
            path,
            fault: Fault::Forward,
        });
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let Some(tunnelled) = read_request(&mut reader) else {
            return;
        };
        (head, body) = tunnelled;
        (method, path) = method_and_path(&head);
    }
    let fault = (rule.lock().unwrap())(&method, &path);
    log.lock().unwrap().push(Seen {
        method,
        path,
        fault,
    });

    let client = reader.get_mut();
    match fault {
        Fault::Forward => forward(client, upstream, head, &body, true),
        Fault::LoseAnswer => forward(client, upstream, head, &body, false),
        Fault::Delay(pause) => {
            thread::sleep(pause);
            forward(client, upstream, head, &body, true);
        }
        Fault::Strip(name) => {
            let prefix = format!("{}:", name.to_ascii_lowercase());
            head.retain(|line| !line.to_ascii_lowercase().starts_with(&prefix));
            forward(client, upstream, head, &body, true);
        }
        Fault::Answer(status, code) => {
            let xml = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
            answer(client, status, xml.as_bytes(), xml.len());
        }
        Fault::Raw(status, body) => answer(client, status, body, body.len()),
        Fault::Truncated(status, body) => answer(client, status, body, body.len() + 100),
        Fault::Reset => {}
    }
    let _ = client.flush();
}

/// The method and the path without query string, from the request line.
fn method_and_path(head: &[String]) -> (String, String) {
    let mut request_line = head[0].split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default();
    (
        method,
        target.split('?').next().unwrap_or_default().to_owned(),
    )
}

/// Reads one request: its head lines (without `Connection`) and its body.
fn read_request(reader: &mut BufReader<impl Read + Write>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head: Vec<String> = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap();
        }
        if !lower.starts_with("connection:") && !lower.starts_with("proxy-connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends the request to the server and, if `deliver`, its answer back.
fn forward(
    client: &mut impl Write,
    upstream: &str,
    mut head: Vec<String>,
    body: &[u8],
    deliver: bool,
) {
    let mut server = TcpStream::connect(upstream).unwrap();
    head.push("Connection: close\r\n".into());
    head.push("\r\n".into());
    server.write_all(head.concat().as_bytes()).unwrap();
    server.write_all(body).unwrap();
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).unwrap();
    if deliver {
        let _ = client.write_all(&answer);
    }
}

/// Writes an answer that claims `length` bytes of body.
fn answer(client: &mut impl Write, status: u16, body: &[u8], length: usize) {
    let head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    let _ = client.write_all(head.as_bytes());
    let _ = client.write_all(body);
}

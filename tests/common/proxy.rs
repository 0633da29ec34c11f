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

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass it to the server and its answer back.
    Forward,
    /// Answer `status` with an S3 error `code`, without forwarding.
    Answer(u16, &'static str),
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
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(rule)));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule, log) = (upstream.clone(), Arc::clone(&rule), Arc::clone(&log));
                thread::spawn(move || handle(client, &upstream, &rule, &log));
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
fn handle(client: TcpStream, upstream: &str, rule: &Mutex<Rule>, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap();
        }
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();

    let mut request_line = head[0].split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let fault = (rule.lock().unwrap())(&method, &path);
    log.lock().unwrap().push(Seen {
        method,
        path,
        fault,
    });

    let mut client = client;
    match fault {
        Fault::Forward => {
            let mut server = TcpStream::connect(upstream).unwrap();
            head.push("Connection: close\r\n".into());
            head.push("\r\n".into());
            server.write_all(head.concat().as_bytes()).unwrap();
            server.write_all(&body).unwrap();
            let mut answer = Vec::new();
            server.read_to_end(&mut answer).unwrap();
            let _ = client.write_all(&answer);
        }
        Fault::Answer(status, code) => {
            let xml = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            let _ = client.write_all(answer.as_bytes());
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

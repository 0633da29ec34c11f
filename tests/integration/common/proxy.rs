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
    /// Forward with one byte of the request body flipped, as a bad link
    /// would: the server sees a body that differs from its Content-MD5.
    FlipRequestByte,
    /// Forward, and flip one byte of the answer's body on the way back.
    FlipAnswerByte,
    /// Answer a ListObjectsV2 with a truncated page of no keys whose next
    /// continuation token is the one the request carried (`T1` if none).
    RepeatToken,
    /// Take the request body from the client `bytes` at a time, one chunk
    /// every `every`, passing each on to the server: a slow uplink.
    ThrottleBody { bytes: usize, every: Duration },
    /// Forward, and pass the answer back `bytes` at a time, one chunk
    /// every `every`: a slow downlink.
    ThrottleAnswer { bytes: usize, every: Duration },
    /// Take `after` bytes of the request body, then read nothing more for
    /// `stall` and close: an uplink that stops dead mid-upload.
    StallBody { after: usize, stall: Duration },
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
    let Some((mut head, mut length)) = read_head(&mut reader) else {
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
        let Some(tunnelled) = read_head(&mut reader) else {
            return;
        };
        (head, length) = tunnelled;
        (method, path) = method_and_path(&head);
    }
    let fault = (rule.lock().unwrap())(&method, &path);
    log.lock().unwrap().push(Seen {
        method,
        path,
        fault,
    });

    let mut body = match fault {
        Fault::ThrottleBody { bytes, every } => {
            let answer = relay(upstream, head, |server| {
                let mut left = length;
                while left > 0 {
                    let mut chunk = vec![0; bytes.min(left)];
                    reader.read_exact(&mut chunk).ok()?;
                    server.write_all(&chunk).ok()?;
                    left -= chunk.len();
                    thread::sleep(every);
                }
                Some(())
            });
            let _ = reader.get_mut().write_all(&answer);
            return;
        }
        Fault::StallBody { after, stall } => {
            let _ = read_body(&mut reader, after.min(length));
            thread::sleep(stall);
            return;
        }
        _ => match read_body(&mut reader, length) {
            Some(body) => body,
            None => return,
        },
    };
    let client = reader.get_mut();
    let forward = |head, body: &[u8]| relay(upstream, head, |server| server.write_all(body).ok());
    match fault {
        Fault::Forward => {
            let _ = client.write_all(&forward(head, &body));
        }
        Fault::LoseAnswer => {
            forward(head, &body);
        }
        Fault::Delay(pause) => {
            thread::sleep(pause);
            let _ = client.write_all(&forward(head, &body));
        }
        Fault::Strip(name) => {
            let prefix = format!("{}:", name.to_ascii_lowercase());
            head.retain(|line| !line.to_ascii_lowercase().starts_with(&prefix));
            let _ = client.write_all(&forward(head, &body));
        }
        Fault::FlipRequestByte => {
            flip_middle_byte(&mut body);
            let _ = client.write_all(&forward(head, &body));
        }
        Fault::FlipAnswerByte => {
            let mut answer = forward(head, &body);
            let body_at = find(&answer, b"\r\n\r\n").map_or(answer.len(), |at| at + 4);
            flip_middle_byte(&mut answer[body_at..]);
            let _ = client.write_all(&answer);
        }
        Fault::ThrottleAnswer { bytes, every } => {
            for chunk in forward(head, &body).chunks(bytes) {
                if client
                    .write_all(chunk)
                    .and_then(|()| client.flush())
                    .is_err()
                {
                    return;
                }
                thread::sleep(every);
            }
        }
        Fault::RepeatToken => {
            let token = query_value(&head[0], "continuation-token").unwrap_or("T1");
            let page = format!(
                "<ListBucketResult><IsTruncated>true</IsTruncated>\
                 <NextContinuationToken>{token}</NextContinuationToken></ListBucketResult>"
            );
            answer(client, 200, page.as_bytes(), page.len());
        }
        Fault::Answer(status, code) => {
            let xml = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
            answer(client, status, xml.as_bytes(), xml.len());
        }
        Fault::Raw(status, body) => answer(client, status, body, body.len()),
        Fault::Truncated(status, body) => answer(client, status, body, body.len() + 100),
        Fault::Reset | Fault::ThrottleBody { .. } | Fault::StallBody { .. } => {}
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

/// The raw value of query parameter `name` in a request line.
fn query_value<'a>(request_line: &'a str, name: &str) -> Option<&'a str> {
    let target = request_line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Flips every bit of the middle byte, if there is one.
fn flip_middle_byte(bytes: &mut [u8]) {
    let middle = bytes.len() / 2;
    if let Some(byte) = bytes.get_mut(middle) {
        *byte ^= 0xff;
    }
}

/// Reads a request's head lines (without `Connection`) and the length of
/// its body.
fn read_head(reader: &mut BufReader<impl Read + Write>) -> Option<(Vec<String>, usize)> {
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
    Some((head, content_length))
}

/// Reads `length` bytes of body.
fn read_body(reader: &mut BufReader<impl Read + Write>, length: usize) -> Option<Vec<u8>> {
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Sends the request head to the server, then the body by `send_body`,
/// and returns the server's whole answer (empty if the body failed).
fn relay(
    upstream: &str,
    mut head: Vec<String>,
    send_body: impl FnOnce(&mut TcpStream) -> Option<()>,
) -> Vec<u8> {
    let mut server = TcpStream::connect(upstream).unwrap();
    head.push("Connection: close\r\n".into());
    head.push("\r\n".into());
    server.write_all(head.concat().as_bytes()).unwrap();
    let mut answer = Vec::new();
    if send_body(&mut server).is_some() {
        server.read_to_end(&mut answer).unwrap();
    }
    answer
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

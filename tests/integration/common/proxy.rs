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
    /// Play AWS's S3 for a bucket in `region`: forward a request sent to
    /// that region's endpoint (`Host: s3.<region>.…`) and signed for it
    /// (the `X-Amz-Credential` scope), and refuse any other the way
    /// `WrongRegion` says. Logged as what was done (`Forward` or
    /// `Refuse`).
    InRegion(&'static str, WrongRegion),
    /// What `InRegion` answered a request for another region.
    Refuse(&'static str, WrongRegion),
}

/// How S3 answers a request for a bucket in another region. A HEAD's
/// answer has no body: the region is in the `x-amz-bucket-region` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongRegion {
    /// 301 `PermanentRedirect`, the region in `x-amz-bucket-region`.
    Redirect,
    /// 400 `AuthorizationHeaderMalformed`, the region in `<Region>`.
    HeaderMalformed,
    /// 400 `AuthorizationQueryParametersError` (a presigned request), the
    /// region in `<Region>`.
    QueryParametersError,
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
        FaultProxy::serve(upstream, Front::Plain, rule)
    }

    /// A proxy that speaks HTTPS with `tls` to s3wal, as
    /// `https://localhost:PORT`, and forwards every request.
    pub fn start_tls(upstream: &str, tls: Arc<rustls::ServerConfig>) -> FaultProxy {
        FaultProxy::serve(upstream, Front::Tls(tls), |_, _| Fault::Forward)
    }

    /// A forward proxy for `HTTPS_PROXY` that ends each `CONNECT` tunnel
    /// itself, with `tls` (a certificate of the test's CA for the hosts
    /// tunnelled to), and treats the requests inside as `start` does:
    /// how a test reaches AWS's endpoint names without leaving loopback.
    pub fn start_intercepting(
        upstream: &str,
        tls: Arc<rustls::ServerConfig>,
        rule: impl FnMut(&str, &str) -> Fault + Send + 'static,
    ) -> FaultProxy {
        FaultProxy::serve(upstream, Front::Intercept(tls), rule)
    }

    fn serve(
        upstream: &str,
        front: Front,
        rule: impl FnMut(&str, &str) -> Fault + Send + 'static,
    ) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = match front {
            Front::Tls(_) => format!("https://localhost:{port}"),
            _ => format!("http://127.0.0.1:{port}"),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(rule)));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule, log) = (upstream.clone(), Arc::clone(&rule), Arc::clone(&log));
                let front = front.clone();
                thread::spawn(move || match front {
                    Front::Tls(config) => {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        let stream = rustls::StreamOwned::new(connection, client);
                        handle(stream, &upstream, &rule, &log);
                    }
                    Front::Intercept(config) => {
                        if let Some(stream) = end_tunnel(client, config, &log) {
                            handle(stream, &upstream, &rule, &log);
                        }
                    }
                    Front::Plain => {
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

/// What s3wal talks to: the proxy itself, over plain HTTP or TLS, or the
/// end of a `CONNECT` tunnel.
#[derive(Clone)]
enum Front {
    Plain,
    Tls(Arc<rustls::ServerConfig>),
    Intercept(Arc<rustls::ServerConfig>),
}

/// Takes a `CONNECT`, opens the tunnel, and speaks TLS with `config` in
/// it. The client sends nothing more before the tunnel is open, so no
/// byte of the TLS handshake is left in a buffer.
fn end_tunnel(
    client: TcpStream,
    config: Arc<rustls::ServerConfig>,
    log: &Mutex<Vec<Seen>>,
) -> Option<rustls::StreamOwned<rustls::ServerConnection, TcpStream>> {
    let mut reader = BufReader::new(client);
    let (head, _) = read_head(&mut reader)?;
    let (method, path) = method_and_path(&head);
    assert_eq!(
        method, "CONNECT",
        "an intercepting proxy takes tunnels only"
    );
    log.lock().unwrap().push(Seen {
        method,
        path,
        fault: Fault::Forward,
    });
    let mut client = reader.into_inner();
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .ok()?;
    let connection = rustls::ServerConnection::new(config).unwrap();
    Some(rustls::StreamOwned::new(connection, client))
}

/// What `Fault::InRegion(region, wrong)` does with the request of `head`.
fn in_region(head: &[String], region: &'static str, wrong: WrongRegion) -> Fault {
    let host = head.iter().find_map(|line| {
        Some(
            line.to_ascii_lowercase()
                .strip_prefix("host:")?
                .trim()
                .to_owned(),
        )
    });
    let to_region = host.is_some_and(|host| host.contains(&format!(".{region}.")));
    let credential = query_value(&head[0], "X-Amz-Credential").unwrap_or_default();
    let signed_for = credential.replace("%2F", "/").split('/').nth(2) == Some(region);
    match to_region && signed_for {
        true => Fault::Forward,
        false => Fault::Refuse(region, wrong),
    }
}

/// Answers as S3 answers a request for a bucket in `region` that was sent
/// to or signed for another: the region in the header for a HEAD (no
/// body) and a 301, in the body's `<Region>` for the 400s.
fn refuse(client: &mut impl Write, method: &str, region: &str, wrong: WrongRegion) {
    let (status, code, body_region) = match wrong {
        WrongRegion::Redirect => (301, "PermanentRedirect", None),
        WrongRegion::HeaderMalformed => (400, "AuthorizationHeaderMalformed", Some(region)),
        WrongRegion::QueryParametersError => {
            (400, "AuthorizationQueryParametersError", Some(region))
        }
    };
    let head = method == "HEAD";
    let header = match head || body_region.is_none() {
        true => format!("x-amz-bucket-region: {region}\r\n"),
        false => String::new(),
    };
    let body = match (head, body_region) {
        (true, _) => String::new(),
        (false, Some(region)) => format!(
            "<Error><Code>{code}</Code><Message>the region is wrong; expecting \
             '{region}'</Message><Region>{region}</Region></Error>"
        ),
        (false, None) => format!(
            "<Error><Code>{code}</Code><Message>The bucket you are attempting to access \
             must be addressed using the specified endpoint.</Message></Error>"
        ),
    };
    answer_with(client, status, &header, body.as_bytes(), body.len());
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
    let fault = match (rule.lock().unwrap())(&method, &path) {
        Fault::InRegion(region, wrong) => in_region(&head, region, wrong),
        fault => fault,
    };
    log.lock().unwrap().push(Seen {
        method: method.clone(),
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
        Fault::Refuse(region, wrong) => refuse(client, &method, region, wrong),
        Fault::Reset
        | Fault::ThrottleBody { .. }
        | Fault::StallBody { .. }
        | Fault::InRegion(..) => {}
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
    answer_with(client, status, "", body, length);
}

/// Writes an answer with the `headers` lines (each ending in CRLF) that
/// claims `length` bytes of body.
fn answer_with(client: &mut impl Write, status: u16, headers: &str, body: &[u8], length: usize) {
    let head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n{headers}\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    let _ = client.write_all(head.as_bytes());
    let _ = client.write_all(body);
}

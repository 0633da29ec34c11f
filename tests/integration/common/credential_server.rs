//! A loopback stand-in for the credential endpoints that cannot run here
//! (EC2 instance metadata, the container endpoint, the SSO portal, and
//! STS for end-to-end runs), speaking their documented wire formats. It
//! hands out the real test key and secret (with a session token the S3
//! server does not check), so every provider is proven by a real append.
//! One request per connection (`Connection: close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the token PUT of the metadata service is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPut {
    /// 200 with a token; GETs without it get 401.
    Token,
    /// This status; GETs need no token (IMDSv1).
    Refuse(u16),
    /// No answer at all (a container behind a hop limit of 1); GETs
    /// without a token get 401.
    Hang,
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub access_key: String,
    pub secret_key: String,
    /// How long the credentials it hands out live.
    pub lifetime: Duration,
    pub token_put: TokenPut,
    /// The `Authorization` value the container endpoint requires.
    pub container_authorization: Option<String>,
    /// Replaces every credentials body (malformed-answer tests).
    pub body: Option<String>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct CredentialServer {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

const IMDS_TOKEN: &str = "imds-session-token";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";

impl CredentialServer {
    pub fn start(behaviour: Behaviour) -> CredentialServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (behaviour, log) = (behaviour.clone(), Arc::clone(&log));
                thread::spawn(move || serve(stream, &behaviour, &log));
            }
        });
        CredentialServer { url, seen }
    }

    /// How many requests had this path.
    pub fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(path))
            .count()
    }
}

/// The session token of the `n`th credentials handed out.
pub fn session_token(n: usize) -> String {
    format!("session-token-{n}")
}

fn serve(stream: TcpStream, behaviour: &Behaviour, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    let n = {
        let mut log = log.lock().unwrap();
        log.push(Seen {
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });
        log.len()
    };
    let expires = jiff::Timestamp::now() + behaviour.lifetime;
    let expiration = expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (key, secret, token) = (
        &behaviour.access_key,
        &behaviour.secret_key,
        session_token(n),
    );
    let json = behaviour.body.clone().unwrap_or_else(|| {
        format!(
            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"{token}","Expiration":"{expiration}"}}"#
        )
    });
    let token_ok = header("x-aws-ec2-metadata-token").as_deref() == Some(IMDS_TOKEN)
        || matches!(behaviour.token_put, TokenPut::Refuse(_));
    let (status, answer) = match (method.as_str(), path.as_str()) {
        ("PUT", "/latest/api/token") => match behaviour.token_put {
            TokenPut::Token => (200, IMDS_TOKEN.to_owned()),
            TokenPut::Refuse(status) => (status, String::new()),
            TokenPut::Hang => {
                thread::sleep(Duration::from_secs(5));
                return;
            }
        },
        ("GET", path) if path.starts_with(ROLE_PATH) && !token_ok => (401, String::new()),
        ("GET", ROLE_PATH) => (200, "test-role\n".to_owned()),
        ("GET", path) if path.starts_with(ROLE_PATH) => (200, json),
        ("GET", path) if path.starts_with("/federation/credentials") => (
            200,
            behaviour.body.clone().unwrap_or_else(|| {
                format!(
                    r#"{{"roleCredentials":{{"accessKeyId":"{key}","secretAccessKey":"{secret}","sessionToken":"{token}","expiration":{}}}}}"#,
                    expires.as_millisecond()
                )
            }),
        ),
        ("GET", _) => match (&behaviour.container_authorization, header("authorization")) {
            (Some(wanted), Some(given)) if *wanted == given => (200, json),
            (Some(_), _) => (401, String::new()),
            (None, _) => (200, json),
        },
        ("POST", _) => {
            let action = match body.contains("Action=AssumeRoleWithWebIdentity") {
                true => "AssumeRoleWithWebIdentity",
                false => "AssumeRole",
            };
            (
                200,
                behaviour.body.clone().unwrap_or_else(|| {
                    format!(
                        "<{action}Response><{action}Result><Credentials>\
                         <AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
                         <SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration>\
                         </Credentials></{action}Result></{action}Response>"
                    )
                }),
            )
        }
        _ => (404, String::new()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.flush();
}

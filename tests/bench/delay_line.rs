//! delay-line: a local stand-in for a network where S3 is RTT_MS away, for
//! `make bench` (tests/bench/bench.py builds it with plain `rustc`).
//!
//! Usage: delay-line UPSTREAM_HOST:PORT RTT_MS [REQUEST_LOG]
//! Listens on a free loopback port, prints `http://127.0.0.1:PORT`, and
//! forwards every connection to UPSTREAM (a loopback address) until killed.
//!
//! Latency without a bandwidth cap: in each direction, every chunk of bytes
//! is written on half a round trip after it was read, and the end of the
//! stream (FIN) likewise. So every HTTP request on a keep-alive connection
//! pays one round trip (its head out, its answer back), requests in flight
//! side by side each pay one, and none waits behind another's delay.
//! Connection set-up (TCP and TLS handshakes) is not charged.
//!
//! One thread and epoll serve every connection, with a timer heap for the
//! chunks on their way: on a 2-core machine the line must cost far less CPU
//! than the server and the client it sits between (a thread per direction
//! cost about 0.2 ms of CPU per request, a fifth of the server's).
//!
//! With REQUEST_LOG, the request stream of every connection is also framed
//! as HTTP/1.1 (Content-Length or chunked bodies) and `METHOD TARGET` is
//! appended to that file, one line per request, as soon as its head is
//! read: before it is forwarded, so before any answer to it.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::env;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process;
use std::time::{Duration, Instant};

/// Bytes read from a socket at most at once.
const READ_SIZE: usize = 256 * 1024;
/// Bytes on their way in one direction beyond which its source is no longer
/// read (TCP then pushes back), as a full network buffer would.
const IN_FLIGHT_LIMIT: usize = 64 * 1024 * 1024;
/// The epoll token of the listening socket.
const LISTENER: u64 = u64::MAX;

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: delay-line UPSTREAM_HOST:PORT RTT_MS [REQUEST_LOG]");
        process::exit(2);
    }
    let upstream = args[1]
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| fail(&format!("cannot resolve {}", args[1])));
    if !upstream.ip().is_loopback() {
        fail("the upstream must be a loopback address");
    }
    let rtt_ms: f64 = args[2]
        .parse()
        .ok()
        .filter(|ms: &f64| *ms >= 0.0)
        .unwrap_or_else(|| fail("RTT_MS is a number of milliseconds"));
    let log = args.get(3).map(|path| {
        let file = OpenOptions::new().create(true).append(true).open(path);
        file.unwrap_or_else(|e| fail(&format!("{path}: {e}")))
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&e.to_string()));
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let port = listener.local_addr().expect("a bound socket").port();
    let mut line = Line {
        epoll: Epoll::new(),
        upstream,
        half: Duration::from_secs_f64(rtt_ms / 2000.0),
        log,
        slots: Vec::new(),
        free: Vec::new(),
        generations: 0,
        timers: BinaryHeap::new(),
        buffer: vec![0; READ_SIZE],
    };
    line.epoll
        .control(EPOLL_CTL_ADD, &listener, EPOLLIN, LISTENER);
    println!("http://127.0.0.1:{port}");
    io::stdout().flush().expect("stdout");
    line.run(&listener);
}

fn fail(message: &str) -> ! {
    eprintln!("delay-line: {message}");
    process::exit(2)
}

/// One direction of a connection: what was read from its source and is
/// waiting for its time to be written to the other side.
#[derive(Default)]
struct Pipe {
    /// Chunks by due time; `None` is the end of the stream.
    queue: VecDeque<(Instant, Option<Vec<u8>>)>,
    /// Bytes of the front chunk already written.
    written: usize,
    /// Bytes in `queue`.
    queued: usize,
    /// The source reached its end.
    ended: bool,
    /// The destination took no more bytes: waiting for it to be writable.
    blocked: bool,
    /// The due time of this pipe's timer in the heap, if any.
    armed: Option<Instant>,
    /// The end of the stream was passed on.
    done: bool,
}

/// A client connection and its connection to the upstream. Side 0 is the
/// client, side 1 the upstream; pipe `s` reads side `s` and writes the other.
struct Conn {
    generation: u32,
    sockets: [TcpStream; 2],
    pipes: [Pipe; 2],
    /// The epoll events each socket is registered for, `None` once it is
    /// out of epoll.
    interest: [Option<u32>; 2],
    /// Frames pipe 0, the requests, when they are logged.
    requests: Option<Requests>,
}

struct Line {
    epoll: Epoll,
    upstream: std::net::SocketAddr,
    half: Duration,
    log: Option<File>,
    /// Connections by slot, `None` where free.
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    generations: u32,
    /// (due, slot, generation, pipe): when a pipe has a chunk to write.
    timers: BinaryHeap<Reverse<(Instant, usize, u32, usize)>>,
    buffer: Vec<u8>,
}

/// The epoll token of side `side` of the connection in `slot`.
fn token(slot: usize, generation: u32, side: usize) -> u64 {
    ((slot as u64) << 32) | ((generation as u64 & 0x7fff_ffff) << 1) | side as u64
}

impl Line {
    fn run(&mut self, listener: &TcpListener) -> ! {
        let mut events = vec![EpollEvent { events: 0, data: 0 }; 1024];
        loop {
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((due, ..))| due.saturating_duration_since(Instant::now()));
            let ready = self.epoll.wait(&mut events, timeout);
            for event in &events[..ready] {
                let (flags, data) = (event.events, event.data);
                if data == LISTENER {
                    self.accept(listener);
                    continue;
                }
                let (slot, side) = ((data >> 32) as usize, (data & 1) as usize);
                match self.slots.get(slot) {
                    Some(Some(conn)) if token(slot, conn.generation, side) == data => {}
                    _ => continue, // a connection closed earlier in this batch
                }
                self.ready(slot, side, flags);
            }
            let now = Instant::now();
            while let Some(&Reverse((due, slot, generation, pipe))) = self.timers.peek() {
                if due > now {
                    break;
                }
                self.timers.pop();
                let Some(Some(conn)) = self.slots.get_mut(slot) else {
                    continue;
                };
                if conn.generation == generation && conn.pipes[pipe].armed == Some(due) {
                    conn.pipes[pipe].armed = None;
                    self.flush(slot, pipe);
                }
            }
        }
    }

    fn accept(&mut self, listener: &TcpListener) {
        while let Ok((client, _)) = listener.accept() {
            let Ok(server) = TcpStream::connect(self.upstream) else {
                continue;
            };
            for socket in [&client, &server] {
                let _ = socket.set_nodelay(true);
                socket.set_nonblocking(true).expect("a non-blocking socket");
            }
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            });
            self.generations = self.generations.wrapping_add(1);
            let generation = self.generations;
            for (side, socket) in [&client, &server].into_iter().enumerate() {
                self.epoll.control(
                    EPOLL_CTL_ADD,
                    socket,
                    EPOLLIN,
                    token(slot, generation, side),
                );
            }
            self.slots[slot] = Some(Conn {
                generation,
                sockets: [client, server],
                pipes: Default::default(),
                interest: [Some(EPOLLIN); 2],
                requests: self.log.as_ref().map(|_| Requests::new()),
            });
        }
    }

    fn conn(&mut self, slot: usize) -> &mut Conn {
        self.slots[slot].as_mut().expect("an open connection")
    }

    /// Socket `side` of the connection in `slot` is readable, writable, or
    /// has hung up.
    fn ready(&mut self, slot: usize, side: usize, flags: u32) {
        if flags & EPOLLERR != 0 {
            return self.close(slot);
        }
        if flags & (EPOLLIN | EPOLLHUP) != 0 {
            let pipe = &self.conn(slot).pipes[side];
            if !pipe.ended {
                if pipe.queued < IN_FLIGHT_LIMIT {
                    self.read(slot, side);
                }
            } else if flags & EPOLLHUP != 0 {
                // Shut both ways: nothing more to read or write there.
                let conn = self.slots[slot].as_mut().expect("an open connection");
                conn.interest[side] = None;
                self.epoll.control(EPOLL_CTL_DEL, &conn.sockets[side], 0, 0);
            }
        }
        if flags & EPOLLOUT != 0 && self.slots[slot].is_some() {
            self.conn(slot).pipes[1 - side].blocked = false;
            self.flush(slot, 1 - side);
        }
    }

    /// Reads once from side `side` into its pipe.
    fn read(&mut self, slot: usize, side: usize) {
        let conn = self.slots[slot].as_mut().expect("an open connection");
        let chunk = match conn.sockets[side].read(&mut self.buffer) {
            Ok(0) => None,
            Ok(n) => {
                quick_ack(&conn.sockets[side]);
                let bytes = self.buffer[..n].to_vec();
                if let (0, Some(requests), Some(log)) = (side, &mut conn.requests, &self.log) {
                    requests.feed(&bytes, log);
                }
                Some(bytes)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return;
            }
            Err(_) => return self.close(slot),
        };
        let due = Instant::now() + self.half;
        let pipe = &mut conn.pipes[side];
        pipe.ended = chunk.is_none();
        pipe.queued += chunk.as_ref().map_or(0, Vec::len);
        pipe.queue.push_back((due, chunk));
        if pipe.queue.len() == 1 && !pipe.blocked {
            if self.half.is_zero() {
                self.flush(slot, side);
            } else {
                self.arm(slot, side, due);
            }
        }
        self.update_interest(slot);
    }

    fn arm(&mut self, slot: usize, pipe: usize, due: Instant) {
        let conn = self.conn(slot);
        if conn.pipes[pipe].armed != Some(due) {
            conn.pipes[pipe].armed = Some(due);
            let generation = conn.generation;
            self.timers.push(Reverse((due, slot, generation, pipe)));
        }
    }

    /// Writes the chunks of pipe `pipe` that are due, as far as the other
    /// side takes them.
    fn flush(&mut self, slot: usize, pipe: usize) {
        let now = Instant::now();
        let conn = self.conn(slot);
        let (p, to) = (&mut conn.pipes[pipe], &conn.sockets[1 - pipe]);
        let mut next = None;
        while let Some((due, chunk)) = p.queue.front() {
            if *due > now {
                next = Some(*due);
                break;
            }
            let Some(bytes) = chunk else {
                let _ = to.shutdown(Shutdown::Write);
                p.queue.pop_front();
                p.done = true;
                break;
            };
            match (&*to).write(&bytes[p.written..]) {
                Ok(n) => {
                    p.written += n;
                    if p.written == bytes.len() {
                        p.queued -= bytes.len();
                        p.written = 0;
                        p.queue.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    p.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot),
            }
        }
        if conn.pipes.iter().all(|p| p.done) {
            return self.close(slot);
        }
        if let Some(due) = next {
            self.arm(slot, pipe, due);
        }
        self.update_interest(slot);
    }

    /// Registers each socket of an open connection for reading while its
    /// pipe takes more, and for writing while the pipe towards it is blocked.
    fn update_interest(&mut self, slot: usize) {
        let Some(conn) = self.slots[slot].as_mut() else {
            return; // closed on the way here
        };
        for side in 0..2 {
            if conn.interest[side].is_none() {
                continue;
            }
            let pipe = &conn.pipes[side];
            let reading = !pipe.ended && pipe.queued < IN_FLIGHT_LIMIT;
            let writing = conn.pipes[1 - side].blocked;
            let wanted = if reading { EPOLLIN } else { 0 } | if writing { EPOLLOUT } else { 0 };
            if Some(wanted) != conn.interest[side] {
                conn.interest[side] = Some(wanted);
                let token = token(slot, conn.generation, side);
                self.epoll
                    .control(EPOLL_CTL_MOD, &conn.sockets[side], wanted, token);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            for (side, socket) in conn.sockets.iter().enumerate() {
                if conn.interest[side].is_some() {
                    self.epoll.control(EPOLL_CTL_DEL, socket, 0, 0);
                }
            }
            self.free.push(slot);
        }
    }
}

/// Acknowledges what `socket` received at once instead of up to 40 ms
/// later. Linux delays the ACK in a request/response exchange, and a
/// server that writes an answer's head and body apart without TCP_NODELAY
/// (s3s-fs) holds the body back until that ACK comes: 20 to 40 ms per
/// request on a reused connection, which no network to S3 adds. Linux
/// drops the setting after a while, so it is set after every read.
fn quick_ack(socket: &TcpStream) {
    const IPPROTO_TCP: i32 = 6;
    const TCP_QUICKACK: i32 = 12;
    let on: i32 = 1;
    // SAFETY: a valid socket and a pointer to an int that outlives the call.
    unsafe { setsockopt(socket.as_raw_fd(), IPPROTO_TCP, TCP_QUICKACK, &on, 4) };
}

// The few calls of the C library that std does not offer.
const EPOLL_CLOEXEC: i32 = 0o2000000;
const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;
const EPOLLIN: u32 = 0x001;
const EPOLLOUT: u32 = 0x004;
const EPOLLERR: u32 = 0x008;
const EPOLLHUP: u32 = 0x010;

/// `struct epoll_event`, which is packed on x86-64.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct EpollEvent {
    events: u32,
    data: u64,
}

#[repr(C)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

extern "C" {
    fn epoll_create1(flags: i32) -> i32;
    fn epoll_ctl(epfd: i32, op: i32, fd: i32, event: *mut EpollEvent) -> i32;
    fn epoll_pwait2(
        epfd: i32,
        events: *mut EpollEvent,
        maxevents: i32,
        timeout: *const Timespec,
        sigmask: *const u8,
    ) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const i32, length: u32) -> i32;
}

struct Epoll(i32);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: no pointers.
        let fd = unsafe { epoll_create1(EPOLL_CLOEXEC) };
        if fd < 0 {
            fail(&format!("epoll_create1: {}", io::Error::last_os_error()));
        }
        Epoll(fd)
    }

    fn control(&self, op: i32, socket: &impl AsRawFd, events: u32, data: u64) {
        let mut event = EpollEvent { events, data };
        // SAFETY: a valid epoll and socket, and an event that outlives the call.
        if unsafe { epoll_ctl(self.0, op, socket.as_raw_fd(), &mut event) } < 0 {
            fail(&format!("epoll_ctl: {}", io::Error::last_os_error()));
        }
    }

    /// Waits for events, at most `timeout` (for ever without one), to the
    /// nanosecond; how many came.
    fn wait(&self, events: &mut [EpollEvent], timeout: Option<Duration>) -> usize {
        let timeout = timeout.map(|t| Timespec {
            seconds: t.as_secs() as i64,
            nanoseconds: t.subsec_nanos() as i64,
        });
        let timeout = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const Timespec);
        // SAFETY: a valid epoll, a buffer of `len` events, a timespec or null.
        let n = unsafe {
            epoll_pwait2(
                self.0,
                events.as_mut_ptr(),
                events.len() as i32,
                timeout,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                fail(&format!("epoll_pwait2: {error}"));
            }
            return 0;
        }
        n as usize
    }
}

/// Where the request stream is, as HTTP/1.1 frames it.
enum Frame {
    /// In a request head: the bytes of it so far.
    Head(Vec<u8>),
    /// In a body of known length: bytes left.
    Body(u64),
    /// In the size line of a chunk of a chunked body.
    ChunkSize(Vec<u8>),
    /// In a chunk: bytes left, its closing CRLF included.
    ChunkData(u64),
    /// In the trailer after the last chunk: the current line so far.
    Trailer(Vec<u8>),
    /// Not HTTP as expected: no more counting on this connection.
    Lost,
}

/// Frames a connection's requests and logs each one's request line.
struct Requests {
    frame: Frame,
}

impl Requests {
    fn new() -> Requests {
        Requests {
            frame: Frame::Head(Vec::new()),
        }
    }

    fn feed(&mut self, mut bytes: &[u8], log: &File) {
        while !bytes.is_empty() {
            let (frame, used) = match std::mem::replace(&mut self.frame, Frame::Lost) {
                Frame::Head(mut head) => {
                    let start = head.len().saturating_sub(3);
                    head.extend_from_slice(bytes);
                    match find(&head[start..], b"\r\n\r\n") {
                        Some(at) => {
                            let end = start + at + 4;
                            let used = bytes.len() - (head.len() - end);
                            (request(&head[..end], log), used)
                        }
                        None if head.len() > 1 << 20 => (Frame::Lost, bytes.len()),
                        None => (Frame::Head(head), bytes.len()),
                    }
                }
                Frame::Body(left) => {
                    let used = left.min(bytes.len() as u64);
                    let frame = if used == left {
                        Frame::Head(Vec::new())
                    } else {
                        Frame::Body(left - used)
                    };
                    (frame, used as usize)
                }
                Frame::ChunkData(left) => {
                    let used = left.min(bytes.len() as u64);
                    let frame = if used == left {
                        Frame::ChunkSize(Vec::new())
                    } else {
                        Frame::ChunkData(left - used)
                    };
                    (frame, used as usize)
                }
                Frame::ChunkSize(line) => match take_line(line, bytes) {
                    (Err(partial), used) => (Frame::ChunkSize(partial), used),
                    (Ok(line), used) => {
                        let frame = match chunk_size(&line) {
                            None => Frame::Lost,
                            Some(0) => Frame::Trailer(Vec::new()),
                            Some(size) => Frame::ChunkData(size + 2),
                        };
                        (frame, used)
                    }
                },
                Frame::Trailer(line) => match take_line(line, bytes) {
                    (Err(partial), used) => (Frame::Trailer(partial), used),
                    // The empty line that ends the trailer ends the request.
                    (Ok(line), used) if line == b"\r\n" || line == b"\n" => {
                        (Frame::Head(Vec::new()), used)
                    }
                    (Ok(_), used) => (Frame::Trailer(Vec::new()), used),
                },
                Frame::Lost => (Frame::Lost, bytes.len()),
            };
            self.frame = frame;
            bytes = &bytes[used..];
        }
    }
}

/// Logs the request of `head` and says how its body is framed.
fn request(head: &[u8], log: &File) -> Frame {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or("?"), parts.next().unwrap_or("?"));
    let _ = (&*log).write_all(format!("{method} {target}\n").as_bytes());
    let (mut length, mut chunked) = (0, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => length = n,
                Err(_) => return Frame::Lost,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    if chunked {
        Frame::ChunkSize(Vec::new())
    } else if length > 0 {
        Frame::Body(length)
    } else {
        Frame::Head(Vec::new())
    }
}

/// Appends `bytes` up to and with the first LF to `line`: the whole line,
/// or the line so far when no LF came yet; and how many bytes it took.
fn take_line(mut line: Vec<u8>, bytes: &[u8]) -> (Result<Vec<u8>, Vec<u8>>, usize) {
    let end = bytes.iter().position(|&b| b == b'\n');
    let used = end.map_or(bytes.len(), |at| at + 1);
    line.extend_from_slice(&bytes[..used]);
    if end.is_some() {
        (Ok(line), used)
    } else {
        (Err(line), used)
    }
}

/// The size in a chunk-size line (`1a2b;ext=1\r\n`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let hex = text.split(';').next()?.trim();
    u64::from_str_radix(hex, 16).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

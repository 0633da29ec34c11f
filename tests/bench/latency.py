#!/usr/bin/env python3
"""A TCP forwarder that makes every HTTP request wait before it reaches the
server: a local stand-in for a network where S3 is 20 ms away.

The delay is per request, not per connection: s3wal, curl and aws CLI keep
connections alive, and a network charges every request on them its round
trip. Only requests are parsed (head, then a Content-Length or chunked
body); answers flow back byte for byte, so any response framing works, and
`Expect: 100-continue` works because the two directions are independent.

Usage: tests/bench/latency.py UPSTREAM_HOST:PORT [DELAY_MS]
prints `http://127.0.0.1:PORT` and forwards until interrupted.
"""
import socket
import sys
import threading
import time


class LatencyProxy:
    """Listens on a free loopback port and forwards to `upstream`
    (`host:port`), holding each request back `delay` seconds."""

    def __init__(self, upstream, delay):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            _close(client)
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pump, args=(server, client), daemon=True).start()
        try:
            reader = client.makefile("rb")
            while _forward_request(reader, server, self.delay):
                pass
        except OSError:
            pass
        finally:
            _close(server)
            _close(client)


def _forward_request(reader, server, delay):
    """Reads one request from `reader` and sends it to `server`, the head
    after `delay`, the body as it comes. False at the end of the stream."""
    head = []
    while True:
        line = reader.readline()
        if not line:
            return False
        head.append(line)
        if line in (b"\r\n", b"\n"):
            break
    fields = {}
    for line in head[1:-1]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    time.sleep(delay)
    server.sendall(b"".join(head))
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        _forward_chunks(reader, server)
    else:
        _forward_bytes(reader, server, int(fields.get(b"content-length", b"0")))
    return True


def _forward_bytes(reader, server, length):
    while length > 0:
        block = reader.read1(min(length, 1 << 16))
        if not block:
            raise OSError("the client closed mid-body")
        server.sendall(block)
        length -= len(block)


def _forward_chunks(reader, server):
    """Forwards a chunked body verbatim, trailers included."""
    while True:
        size_line = reader.readline()
        server.sendall(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        _forward_bytes(reader, server, size + 2)
    while True:
        line = reader.readline()
        server.sendall(line)
        if line in (b"\r\n", b"\n", b""):
            return


def _pump(source, target):
    """Copies the server's answers back until either side closes."""
    try:
        while True:
            block = source.recv(1 << 16)
            if not block:
                break
            target.sendall(block)
    except OSError:
        pass
    finally:
        _close(target)
        _close(source)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


if __name__ == "__main__":
    proxy = LatencyProxy(sys.argv[1], float(sys.argv[2] if len(sys.argv) > 2 else 20) / 1000)
    print(proxy.endpoint, flush=True)
    threading.Event().wait()

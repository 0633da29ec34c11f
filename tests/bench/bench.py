#!/usr/bin/env python3
"""`make bench`: what s3wal costs in time, requests and memory, measured side
by side with what a user would write instead, against a local s3s-fs.

Usage: tests/bench/bench.py S3WAL_BINARY [STATIC_BINARY]
Every time is the median of several runs, taken in this one run of the script.
Prints a Markdown table on stdout; progress goes to stderr.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "..", "servers")
REGION = "us-east-1"


def note(message):
    print(message, file=sys.stderr, flush=True)


def record(offset, data):
    """The seed's record format, written independently of s3wal."""
    head = struct.pack(">Q", offset)
    return head + data + hashlib.sha256(head + data).digest()


def key_name(offset):
    return "%020d" % offset


def peak_rss_kib(child):
    """The child's peak resident memory (VmHWM), polled until it exits.

    Not ru_maxrss: for a child forked from this Python process it counts
    the interpreter's own memory from before the exec."""
    peak = 0
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            break
        time.sleep(0.05)
    return peak


def feed(path, pipe):
    """Copies the file at `path` into `pipe` and closes it."""
    with open(path, "rb") as source:
        shutil.copyfileobj(source, pipe, 1024 * 1024)
    pipe.close()


class Server:
    """A local s3s-fs started by the project's script, with its env file."""

    def __init__(self, scratch):
        self.dir = os.path.join(scratch, "s3s-fs")
        subprocess.run([os.path.join(SERVERS, "s3s-fs.sh"), "start", self.dir],
                       check=True, stdout=subprocess.DEVNULL)
        env = dict(line.split("=", 1) for line in open(os.path.join(self.dir, "env")).read().split())
        self.endpoint = env["S3WAL_TEST_S3S_ENDPOINT"]
        self.bucket = env["S3WAL_TEST_S3S_BUCKET"]
        self.access_key = env["S3WAL_TEST_ACCESS_KEY"]
        self.secret_key = env["S3WAL_TEST_SECRET_KEY"]
        self.data = env["S3WAL_TEST_S3S_DATA"]

    def stop(self):
        subprocess.run([os.path.join(SERVERS, "s3s-fs.sh"), "stop", self.dir], check=False)

    def fill(self, bucket, prefix, count):
        """Writes records 1..count of a log into a bucket of its own, straight
        into the server's folder (s3s-fs lists by walking a whole bucket)."""
        folder = os.path.join(self.data, bucket, prefix)
        os.makedirs(folder, exist_ok=True)
        for n in range(1, count + 1):
            with open(os.path.join(folder, key_name(n)), "wb") as f:
                f.write(record(n, b"r%d" % n))

    def presign(self, method, key, expires=3600, bucket=None):
        """A SigV4 presigned URL, as `aws s3 presign` makes for GET."""
        url = urllib.parse.urlparse(self.endpoint)
        bucket = bucket or self.bucket
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        scope = f"{day}/{REGION}/s3/aws4_request"
        path = "/" + bucket + "/" + urllib.parse.quote(key, safe="/-_.~")
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        }
        canonical_query = "&".join(
            urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~")
            for k, v in sorted(query.items()))
        canonical = f"{method}\n{path}\n{canonical_query}\nhost:{url.netloc}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signing_key = ("AWS4" + self.secret_key).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.endpoint}{path}?{canonical_query}&X-Amz-Signature={signature}"


class Bench:
    def __init__(self, s3wal, server, scratch):
        self.s3wal = s3wal
        self.server = server
        self.scratch = scratch
        self.env = dict(os.environ,
                        AWS_ENDPOINT_URL=server.endpoint,
                        AWS_BUCKET_NAME=server.bucket,
                        AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_REGION=REGION)
        self.rows = []

    def row(self, what, value, compare="", target=""):
        self.rows.append((what, value, compare, target))
        note(f"  {what}: {value} {compare}")

    def run(self, args, prefix, lock_dir=None, stdin=None, bucket=None):
        env = dict(self.env, AWS_PREFIX=prefix, AWS_BUCKET_NAME=bucket or self.server.bucket,
                   S3WAL_LOCK_DIR=lock_dir or os.path.join(self.scratch, "locks"))
        return subprocess.run([self.s3wal] + args, env=env, input=stdin, cwd=self.scratch,
                              capture_output=True, check=True)

    def requests(self, args, prefix, lock_dir, bucket):
        """The total in the --verbose request summary."""
        stderr = self.run(["-v"] + args, prefix, lock_dir, bucket=bucket).stderr.decode()
        summary = [l for l in stderr.splitlines() if l.startswith("[s3wal] requests: ")][-1]
        return int(summary.split()[2]), summary.split("(", 1)[1].rstrip(")")

    @staticmethod
    def wall(command, repeat, **kwargs):
        """Median wall time of `command` (a callable or argv) over `repeat` runs."""
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            if callable(command):
                command()
            else:
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def one_append(self):
        note("one append process vs curl vs aws s3api put-object")
        prefix = "bench/one"
        self.run(["append", "warm the hint"], prefix)
        counter = iter(range(10**9))
        appended = self.wall(lambda: self.run(["append", "x%d" % next(counter)], prefix), 21)
        body = os.path.join(self.scratch, "body")
        with open(body, "wb") as f:
            f.write(record(1, b"Record #1"))
        keys = iter(range(10**9))

        def curl_put():
            url = self.server.presign("PUT", "bench/curl/" + key_name(next(keys) + 1))
            subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", "-X", "PUT", "-H", "If-None-Match: *",
                            "--data-binary", "@" + body, url], check=True)

        curl = self.wall(curl_put, 21)
        self.row("one `append` process (warm hint), median of 21", f"{appended * 1000:.1f} ms",
                 f"curl presigned PUT {curl * 1000:.1f} ms: {appended / curl:.2f}x", "<= 1.5x curl")
        aws = shutil.which("aws")
        if aws:
            aws_keys = iter(range(10**9))
            aws_time = self.wall(lambda: subprocess.run(
                [aws, "s3api", "put-object", "--endpoint-url", self.server.endpoint,
                 "--bucket", self.server.bucket, "--key", "bench/aws/" + key_name(next(aws_keys) + 1),
                 "--body", body], check=True, stdout=subprocess.DEVNULL, env=self.env), 5)
            self.row("`aws s3api put-object`, median of 5", f"{aws_time * 1000:.0f} ms",
                     f"s3wal is {aws_time / appended:.1f}x faster")
        else:
            self.row("`aws s3api put-object`", "not installed (pip install awscli)")

    def request_counts(self):
        note("requests per append and for a cold tail")
        for n in (1_000, 10_000, 100_000):
            bucket, prefix = f"bench-n{n}", "wal"
            self.server.fill(bucket, prefix, n)
            cold_dir = os.path.join(self.scratch, f"cold-{n}")
            cold, kinds = self.requests(["recover"], prefix, cold_dir, bucket)
            self.row(f"cold tail at N = {n:,}", f"{cold} requests", kinds, "<= 40 at 100 000")
            warm, kinds = self.requests(["recover"], prefix, cold_dir, bucket)
            self.row(f"warm tail at N = {n:,}", f"{warm} requests", kinds, "<= 2")
            # The first append of a machine also probes If-None-Match once.
            self.run(["append", "first"], prefix, cold_dir, bucket=bucket)
            steady, kinds = self.requests(["append", "steady"], prefix, cold_dir, bucket)
            self.row(f"steady-state append at N = {n:,}", f"{steady} requests", kinds, "1 PUT + <= 1 HEAD")

    def batch(self):
        note("1000 appends: append --lines vs 1000 curl processes")
        lines = b"".join(b"line %d\n" % i for i in range(1000))
        lines_time = self.wall(lambda: self.run(["append", "--lines"], "bench/lines-%d" % time.monotonic_ns(),
                                                stdin=lines), 3)
        bodies = [record(n, b"line %d" % n) for n in range(1, 1001)]
        body = os.path.join(self.scratch, "line-body")

        def curl_loop():
            base = "bench/curl-lines-%d/" % time.monotonic_ns()
            for n, data in enumerate(bodies, start=1):
                with open(body, "wb") as f:
                    f.write(data)
                subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", "-X", "PUT", "-H", "If-None-Match: *",
                                "--data-binary", "@" + body, self.server.presign("PUT", base + key_name(n))],
                               check=True)

        curl_time = self.wall(curl_loop, 3)
        self.row("1000 records via `append --lines`, median of 3", f"{lines_time:.2f} s",
                 f"1000 curl processes {curl_time:.2f} s: {curl_time / lines_time:.1f}x faster", ">= 3x")

    def dump(self):
        note("dump of 10 000 records vs a sequential reader")
        bucket, prefix = "bench-dump", "wal"
        self.server.fill(bucket, prefix, 10_000)
        self.run(["recover"], prefix, bucket=bucket)
        dump_time = self.wall(lambda: self.run(["dump"], prefix, bucket=bucket), 3)
        urls = [self.server.presign("GET", prefix + "/" + key_name(n), bucket=bucket)
                 for n in range(1, 10_001)]

        def sequential_reader():
            """One keep-alive connection, one GET at a time: what a loop over
            the records does. (curl -K with 10 000 URLs stalls about 25 ms per
            request on this server, which would flatter s3wal.)"""
            host = urllib.parse.urlparse(self.server.endpoint).netloc
            connection = http.client.HTTPConnection(host)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for url in urls:
                connection.request("GET", url[len(self.server.endpoint):])
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status
            connection.close()

        sequential = self.wall(sequential_reader, 3)
        self.row("`dump` of 10 000 records, median of 3", f"{dump_time:.2f} s",
                 f"sequential keep-alive reader {sequential:.2f} s: {sequential / dump_time:.1f}x faster",
                 ">= 5x")
        for n in (10_000, 100_000):
            env = dict(self.env, AWS_PREFIX="wal", AWS_BUCKET_NAME=f"bench-n{n}",
                       S3WAL_LOCK_DIR=os.path.join(self.scratch, f"cold-{n}"))
            child = subprocess.Popen([self.s3wal, "dump"], env=env, cwd=self.scratch,
                                     stdout=subprocess.DEVNULL)
            peak_kib = peak_rss_kib(child)
            assert child.returncode == 0, child.returncode
            self.row(f"peak RSS of `dump` over {n:,} records", f"{peak_kib / 1024:.1f} MiB",
                     "", "<= 8 MiB, flat in N")

    def big_records(self):
        """Peak RSS and time of one big record through append (from a pipe,
        as `tar c | s3wal append -`), read and dump, beside a curl PUT of
        the same bytes."""
        for mib in (50, 500):
            note(f"a {mib} MiB record: append from a pipe, read, dump")
            prefix = f"bench/big-{mib}"
            path = os.path.join(self.scratch, f"big-{mib}")
            with open(path, "wb") as out:
                for _ in range(mib):
                    out.write(os.urandom(1024 * 1024))
            env = dict(self.env, AWS_PREFIX=prefix,
                       S3WAL_LOCK_DIR=os.path.join(self.scratch, "locks"))
            measured = {}
            for what, args, stdout in (("append", ["append", "-"], subprocess.DEVNULL),
                                       ("read", ["read", "1"], subprocess.DEVNULL),
                                       ("dump", ["dump", "--raw"], subprocess.DEVNULL)):
                start = time.perf_counter()
                child = subprocess.Popen([self.s3wal] + args, env=env, cwd=self.scratch,
                                         stdin=subprocess.PIPE if what == "append" else None,
                                         stdout=stdout)
                if what == "append":
                    # A pipe, as from tar: the size is not known in advance.
                    feeder = threading.Thread(target=feed, args=(path, child.stdin))
                    feeder.start()
                peak_kib = peak_rss_kib(child)
                if what == "append":
                    feeder.join()
                assert child.wait() == 0, (what, child.returncode)
                measured[what] = (time.perf_counter() - start, peak_kib / 1024)
            curl = self.wall(["curl", "-sf", "-o", "/dev/null", "-T", path,
                              self.server.presign("PUT", prefix + "/curl")], 1)
            for what, (seconds, peak) in measured.items():
                compare = f"curl PUT {curl:.2f} s" if what == "append" else ""
                self.row(f"`{what}` of a {mib} MiB record: time, peak RSS",
                         f"{seconds:.2f} s, {peak:.0f} MiB", compare,
                         "RSS <= 1.2x the record" if what != "dump" else "RSS <= 2.4x")
            os.remove(path)

    def sizes(self, static):
        for label, path in (("release binary (dynamic)", self.s3wal), ("release binary (static)", static)):
            if path and os.path.exists(path):
                self.row(label, f"{os.path.getsize(path) / 1e6:.2f} MB", "", "<= 3 MB static")

    def table(self):
        print("| measure | s3wal | compared with | target |")
        print("| --- | --- | --- | --- |")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def main():
    s3wal = os.path.abspath(sys.argv[1])
    static = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    scratch = tempfile.mkdtemp(prefix="s3wal-bench.")
    server = Server(scratch)
    try:
        bench = Bench(s3wal, server, scratch)
        bench.one_append()
        bench.request_counts()
        bench.batch()
        bench.dump()
        bench.big_records()
        bench.sizes(static)
        note("")
        bench.table()
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

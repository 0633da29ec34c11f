#!/usr/bin/env python3
"""`make bench`: what s3wal costs in time, requests and memory, measured side
by side with what a user would write instead (curl, aws CLI), against a
local s3s-fs: once on loopback, once through a proxy that holds every
request back 20 ms, as a network to S3 would.

Usage: tests/bench/bench.py S3WAL_BINARY [STATIC_BINARY]
Every time is the median of several runs, taken in this one run of the script.
Prints a Markdown table on stdout, a column per network; progress goes to
stderr.
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

from latency import LatencyProxy

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "..", "servers")
REGION = "us-east-1"
# The round trip the proxy adds to every request.
DELAY_MS = 20
LOOPBACK, FAR = "loopback", f"{DELAY_MS} ms per request"
NETWORKS = (LOOPBACK, FAR)
# The log lengths of the fresh-runner and memory measures.
SIZES = (1_000, 10_000, 100_000)
# The records `dump` reads, and how many of them the sequential reader.
DUMP_RECORDS, SEQUENTIAL_RECORDS = 10_000, 1_000


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
        into the server's folder (s3s-fs lists by walking a whole bucket),
        unless that was done before."""
        folder = os.path.join(self.data, bucket, prefix)
        if os.path.isdir(folder):
            return
        os.makedirs(folder)
        for n in range(1, count + 1):
            with open(os.path.join(folder, key_name(n)), "wb") as f:
                f.write(record(n, b"r%d" % n))

    def presign(self, endpoint, method, key, expires=3600, bucket=None):
        """A SigV4 presigned URL of `endpoint` (the server or a proxy to it),
        as `aws s3 presign` makes for GET."""
        url = urllib.parse.urlparse(endpoint)
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
        return f"{endpoint}{path}?{canonical_query}&X-Amz-Signature={signature}"


class Table:
    """The measures, each with a cell per network and a target."""

    def __init__(self):
        self.rows = {}

    def cell(self, measure, network, value, target=""):
        row = self.rows.setdefault(measure, {"target": target})
        row[network] = value
        note(f"  [{network}] {measure}: {value}")

    def print(self):
        print("| measure | " + " | ".join(NETWORKS) + " | target |")
        print("| --- | " + " | ".join("---" for _ in NETWORKS) + " | --- |")
        for measure, row in self.rows.items():
            cells = [measure] + [row.get(network, "") for network in NETWORKS] + [row["target"]]
            print("| " + " | ".join(cells) + " |")


class Bench:
    """The measures on one network: loopback, or through the latency proxy
    at `endpoint`. Logs written here carry the network in their prefix."""

    def __init__(self, s3wal, server, scratch, table, network, endpoint):
        self.s3wal = s3wal
        self.server = server
        self.scratch = scratch
        self.table = table
        self.network = network
        self.endpoint = endpoint
        self.tag = "far" if network == FAR else "loop"
        # A median of fewer runs where every run waits on the network.
        self.repeat = 1 if network == FAR else 3
        self.env = dict(os.environ,
                        AWS_ENDPOINT_URL=endpoint,
                        AWS_BUCKET_NAME=server.bucket,
                        AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_REGION=REGION)

    def cell(self, measure, value, target=""):
        self.table.cell(measure, self.network, value, target)

    def run(self, args, prefix, lock_dir=None, stdin=None, bucket=None):
        env = dict(self.env, AWS_PREFIX=prefix, AWS_BUCKET_NAME=bucket or self.server.bucket,
                   S3WAL_LOCK_DIR=lock_dir or os.path.join(self.scratch, "locks"))
        return subprocess.run([self.s3wal] + args, env=env, input=stdin, cwd=self.scratch,
                              capture_output=True, check=True)

    def requests(self, args, prefix, lock_dir=None, bucket=None):
        """The total and the kinds in the --verbose request summary of one
        run, and its wall time."""
        start = time.perf_counter()
        stderr = self.run(["-v"] + args, prefix, lock_dir, bucket=bucket).stderr.decode()
        seconds = time.perf_counter() - start
        summary = [l for l in stderr.splitlines() if l.startswith("[s3wal] requests: ")][-1]
        return int(summary.split()[2]), summary.split("(", 1)[1].rstrip(")"), seconds

    def measured(self, args, prefix, bucket=None):
        """Wall time and peak RSS (MiB) of one run, stdout discarded."""
        env = dict(self.env, AWS_PREFIX=prefix, AWS_BUCKET_NAME=bucket or self.server.bucket,
                   S3WAL_LOCK_DIR=os.path.join(self.scratch, "locks"))
        start = time.perf_counter()
        child = subprocess.Popen([self.s3wal] + args, env=env, cwd=self.scratch,
                                 stdout=subprocess.DEVNULL)
        peak_kib = peak_rss_kib(child)
        assert child.wait() == 0, (args, child.returncode)
        return time.perf_counter() - start, peak_kib / 1024

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

    def curl_put(self, key, body_path):
        subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", "-X", "PUT", "-H", "If-None-Match: *",
                        "--data-binary", "@" + body_path, self.server.presign(self.endpoint, "PUT", key)],
                       check=True)

    def one_append(self):
        note(f"[{self.network}] one append process vs curl vs aws s3api put-object")
        prefix = f"bench/one-{self.tag}"
        self.run(["append", "warm the hint"], prefix)
        counter = iter(range(10**9))
        repeat = 21 if self.network == LOOPBACK else 11
        appended = self.wall(lambda: self.run(["append", "x%d" % next(counter)], prefix), repeat)
        requests, kinds, _ = self.requests(["append", "counted"], prefix)
        body = os.path.join(self.scratch, "body")
        with open(body, "wb") as f:
            f.write(record(1, b"Record #1"))
        keys = iter(range(10**9))
        curl = self.wall(lambda: self.curl_put(f"bench/curl-{self.tag}/" + key_name(next(keys) + 1), body),
                         repeat)
        self.cell(f"one `append` process (warm hint), median of 21 / 11",
                  f"{appended * 1000:.1f} ms, {requests} requests ({kinds}): {appended / curl:.2f}x curl",
                  "≤ 1.5x curl on loopback, ≤ 3.1x at 20 ms (3 round trips)")
        self.cell("one curl presigned PUT process", f"{curl * 1000:.1f} ms")
        aws = shutil.which("aws")
        if aws:
            aws_keys = iter(range(10**9))
            aws_time = self.wall(lambda: subprocess.run(
                [aws, "s3api", "put-object", "--endpoint-url", self.endpoint,
                 "--bucket", self.server.bucket,
                 "--key", f"bench/aws-{self.tag}/" + key_name(next(aws_keys) + 1),
                 "--body", body], check=True, stdout=subprocess.DEVNULL, env=self.env), 5)
            self.cell("one `aws s3api put-object` process, median of 5", f"{aws_time * 1000:.0f} ms")
        else:
            self.cell("one `aws s3api put-object` process, median of 5", "not installed (pip install awscli)")

    def fresh_runner(self):
        """A CI job: no tail hint and no probe verdict on this machine."""
        note(f"[{self.network}] recover and append from a fresh runner")
        for n in SIZES:
            bucket, prefix = f"bench-n{n}", "wal"
            self.server.fill(bucket, prefix, n - 1)
            # The log's last record appended from another machine, which
            # leaves the store hint a fresh runner starts from.
            self.run(["append", "elsewhere"], prefix,
                     os.path.join(self.scratch, f"elsewhere-{self.tag}-{n}"), bucket=bucket)
            fresh = os.path.join(self.scratch, f"fresh-{self.tag}-{n}")
            count, kinds, seconds = self.requests(["recover"], prefix, fresh + "-recover", bucket)
            self.cell(f"fresh-runner `recover` at N = {n:,}",
                      f"{count} requests ({kinds}), {seconds * 1000:.0f} ms", "≤ 3 requests")
            count, kinds, seconds = self.requests(["recover"], prefix, fresh + "-recover", bucket)
            self.cell(f"warm `recover` at N = {n:,}",
                      f"{count} requests ({kinds}), {seconds * 1000:.0f} ms", "≤ 2 requests")
            count, kinds, seconds = self.requests(["append", "fresh"], prefix, fresh + "-append", bucket)
            self.cell(f"fresh-runner `append` at N = {n:,}",
                      f"{count} requests ({kinds}), {seconds * 1000:.0f} ms", "≤ 4 requests")

    def batch(self):
        note(f"[{self.network}] 1000 appends: append --lines vs 1000 curl processes")
        lines = b"".join(b"line %d\n" % i for i in range(1000))
        lines_time = self.wall(lambda: self.run(
            ["append", "--lines"], f"bench/lines-{self.tag}-{time.monotonic_ns()}", stdin=lines), self.repeat)
        bodies = [record(n, b"line %d" % n) for n in range(1, 1001)]
        body = os.path.join(self.scratch, "line-body")

        def curl_loop():
            base = f"bench/curl-lines-{self.tag}-{time.monotonic_ns()}/"
            for n, data in enumerate(bodies, start=1):
                with open(body, "wb") as f:
                    f.write(data)
                self.curl_put(base + key_name(n), body)

        curl_time = self.wall(curl_loop, self.repeat)
        self.cell("`append --lines` of 1000 records",
                  f"{1000 / lines_time:.0f} records/s: {curl_time / lines_time:.1f}x curl", "≥ 3x curl")
        self.cell("1000 curl PUT processes", f"{1000 / curl_time:.0f} records/s")

    def dump(self):
        note(f"[{self.network}] dump of {DUMP_RECORDS:,} records vs a sequential reader and aws s3 cp")
        bucket, prefix = "bench-dump", "wal"
        self.server.fill(bucket, prefix, DUMP_RECORDS)
        self.run(["recover"], prefix, bucket=bucket)
        runs = [self.measured(["dump"], prefix, bucket) for _ in range(3)]
        dump_time = statistics.median(seconds for seconds, _ in runs)
        peak = max(peak for _, peak in runs)
        urls = [self.server.presign(self.endpoint, "GET", prefix + "/" + key_name(n), bucket=bucket)
                for n in range(1, SEQUENTIAL_RECORDS + 1)]

        def sequential_reader():
            """One keep-alive connection, one GET at a time: what a loop over
            the records does. (curl -K with many URLs stalls about 25 ms per
            request on this server, which would flatter s3wal.)"""
            host = urllib.parse.urlparse(self.endpoint).netloc
            connection = http.client.HTTPConnection(host)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for url in urls:
                connection.request("GET", url[len(self.endpoint):])
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status
            connection.close()

        sequential = self.wall(sequential_reader, 1) / SEQUENTIAL_RECORDS
        rate = DUMP_RECORDS / dump_time
        self.cell(f"`dump` of {DUMP_RECORDS:,} records, median of 3: rate, peak RSS",
                  f"{rate:.0f} records/s, {peak:.1f} MiB: {rate * sequential:.1f}x sequential",
                  "≥ 1 000 records/s at 20 ms; ≥ 5x sequential")
        self.cell(f"sequential keep-alive reader ({SEQUENTIAL_RECORDS:,} GETs)", f"{1 / sequential:.0f} records/s")
        aws = shutil.which("aws")
        if aws:
            # Its default of 10 requests in flight, over the shortest log.
            folder = os.path.join(self.scratch, f"aws-cp-{self.tag}")
            seconds = self.wall([aws, "s3", "cp", "--recursive", "--quiet", "--endpoint-url", self.endpoint,
                                 f"s3://bench-n{SIZES[0]}/wal/", folder], 1, env=self.env)
            count = len(os.listdir(folder))
            self.cell("`aws s3 cp --recursive` of a log", f"{count / seconds:.0f} records/s")
        else:
            self.cell("`aws s3 cp --recursive` of a log", "not installed (pip install awscli)")

    def dump_memory(self):
        note(f"[{self.network}] peak RSS of dump")
        peaks = []
        for n in SIZES[1:]:
            _, peak = self.measured(["dump"], "wal", f"bench-n{n}")
            peaks.append(f"{peak:.1f} MiB")
        self.cell("peak RSS of `dump` over " + " / ".join(f"{n:,}" for n in SIZES[1:]) + " records",
                  " / ".join(peaks),
                  "≤ 16 MiB at the default --parallel 64, flat in N")

    def big_records(self):
        """Peak RSS and time of one big record through append (from a pipe,
        as `tar c | s3wal append -`), read and dump, beside a curl PUT of
        the same bytes."""
        for mib in (50, 500):
            note(f"[{self.network}] a {mib} MiB record: append from a pipe, read, dump")
            prefix = f"bench/big-{mib}"
            path = os.path.join(self.scratch, f"big-{mib}")
            with open(path, "wb") as out:
                for _ in range(mib):
                    out.write(os.urandom(1024 * 1024))
            env = dict(self.env, AWS_PREFIX=prefix,
                       S3WAL_LOCK_DIR=os.path.join(self.scratch, "locks"))
            measured = {}
            for what, args in (("append", ["append", "-"]), ("read", ["read", "1"]), ("dump", ["dump", "--raw"])):
                start = time.perf_counter()
                child = subprocess.Popen([self.s3wal] + args, env=env, cwd=self.scratch,
                                         stdin=subprocess.PIPE if what == "append" else None,
                                         stdout=subprocess.DEVNULL)
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
                              self.server.presign(self.endpoint, "PUT", prefix + "/curl")], 1)
            for what, (seconds, peak) in measured.items():
                compare = f": curl PUT {curl:.2f} s" if what == "append" else ""
                self.cell(f"`{what}` of a {mib} MiB record: time, peak RSS",
                          f"{seconds:.2f} s, {peak:.0f} MiB{compare}",
                          "RSS ≤ 1.2x the record" if what != "dump" else "RSS ≤ 2.4x")
            os.remove(path)

    def sizes(self, static):
        for label, path in (("release binary (dynamic)", self.s3wal), ("release binary (static)", static)):
            if path and os.path.exists(path):
                self.cell(label, f"{os.path.getsize(path) / 1e6:.2f} MB", "≤ 3 MB static")


def main():
    s3wal = os.path.abspath(sys.argv[1])
    static = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    scratch = tempfile.mkdtemp(prefix="s3wal-bench.")
    server = Server(scratch)
    try:
        proxy = LatencyProxy(urllib.parse.urlparse(server.endpoint).netloc, DELAY_MS / 1000)
        table = Table()
        benches = [Bench(s3wal, server, scratch, table, network, endpoint)
                   for network, endpoint in ((LOOPBACK, server.endpoint), (FAR, proxy.endpoint))]
        for bench in benches:
            bench.one_append()
            bench.fresh_runner()
            bench.batch()
            bench.dump()
        loopback = benches[0]
        loopback.dump_memory()
        loopback.big_records()
        loopback.sizes(static)
        note("")
        table.print()
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

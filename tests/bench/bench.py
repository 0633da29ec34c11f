#!/usr/bin/env python3
"""`make bench`: what s3wal costs in time, requests and memory, measured side
by side with what a user would write instead (curl, aws CLI, rclone),
against a local s3s-fs, through a delay line (tests/bench/delay_line.rs):
once with no delay ("loopback"), once with a 20 ms round trip on every
request, as a network to S3 would add. The lines count the requests of
every command, s3wal's and the others' alike.

Usage: tests/bench/bench.py S3WAL_BINARY [STATIC_BINARY]
Every time is the median of several runs, taken in this one run of the script.
Prints two Markdown tables on stdout, the measures and the ratios, a column
per network; progress goes to stderr.
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
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVERS = os.path.join(HERE, "..", "servers")
REGION = "us-east-1"
# The round trip the far delay line adds to every request.
DELAY_MS = 20
LOOPBACK, FAR = "loopback", f"{DELAY_MS} ms per request"
NETWORKS = (LOOPBACK, FAR)
# The log lengths of the fresh-runner and memory measures.
SIZES = (1_000, 10_000, 100_000)
# The records `dump` reads, and how many of them the sequential reader.
DUMP_RECORDS, SEQUENTIAL_RECORDS = 10_000, 1_000
# The GETs in flight of `dump --parallel` and of rclone's --transfers.
PARALLEL = (64, 256)
BIG_MIB = (50, 500)


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


def operation(method, target):
    """The S3 operation of a path-style request line."""
    path, _, query = target.partition("?")
    keys = {part.split("=", 1)[0] for part in query.split("&")}
    on_object = "/" in path.strip("/")
    if method == "GET" and not on_object:
        return "ListObjectsV2" if "list-type" in keys else "ListObjects"
    if method == "POST" and "delete" in keys:
        return "DeleteObjects"
    if "uploads" in keys or "uploadId" in keys:
        return "Multipart" + method.title()
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject",
            "DELETE": "DeleteObject"}.get(method, method) if on_object else method + "Bucket"


class Requests:
    """Requests a delay line saw: their number and their kinds."""

    def __init__(self, lines):
        self.total = len(lines)
        self.kinds = {}
        for line in lines:
            method, _, target = line.partition(" ")
            kind = operation(method, target)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def __str__(self):
        kinds = " ".join(f"{k}={n}" for k, n in sorted(self.kinds.items()))
        return f"{self.total} request{'s' * (self.total != 1)} ({kinds})"


class DelayLine:
    """tests/bench/delay_line.rs in front of the server: every chunk of bytes
    each way waits half of `rtt_ms`, and every request line goes to a log,
    from which `since` counts a command's requests."""

    @staticmethod
    def build():
        """Compiles the delay line with rustc (std only, no Cargo) into the
        Cargo target folder, unless it is there and newer than its source."""
        target = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))
        source, binary = os.path.join(HERE, "delay_line.rs"), os.path.join(target, "delay-line")
        if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
            os.makedirs(target, exist_ok=True)
            subprocess.run(["rustc", "-O", "--edition", "2021", source, "-o", binary], check=True)
        return binary

    def __init__(self, binary, upstream, rtt_ms, log):
        self.log = log
        open(log, "wb").close()
        self.process = subprocess.Popen([binary, upstream, str(rtt_ms), log],
                                        stdout=subprocess.PIPE, text=True)
        self.endpoint = self.process.stdout.readline().strip()
        assert self.endpoint.startswith("http://127.0.0.1:"), self.endpoint

    def mark(self):
        return os.path.getsize(self.log)

    def since(self, mark):
        """The requests logged since `mark`: a request's line is written
        before it is forwarded, so all of a finished command's are there."""
        with open(self.log, "rb") as log:
            log.seek(mark)
            return Requests(log.read().decode().splitlines())

    def stop(self):
        self.process.terminate()
        self.process.wait()


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
    """The measures, each with a cell per network and a target; and the
    ratios, likewise."""

    def __init__(self):
        self.rows = {}
        self.ratios = {}

    def cell(self, measure, network, value, target=""):
        row = self.rows.setdefault(measure, {"target": target})
        row[network] = value
        note(f"  [{network}] {measure}: {value}")

    def ratio(self, name, network, value, target=""):
        row = self.ratios.setdefault(name, {"target": target})
        row[network] = f"{value:.2f}x"
        note(f"  [{network}] {name}: {value:.2f}x")

    def print(self):
        for title, rows in (("measure", self.rows), ("ratio", self.ratios)):
            print(f"| {title} | " + " | ".join(NETWORKS) + " | target |")
            print("| --- | " + " | ".join("---" for _ in NETWORKS) + " | --- |")
            for name, row in rows.items():
                cells = [name] + [row.get(network, "") for network in NETWORKS] + [row["target"]]
                print("| " + " | ".join(cells) + " |")
            print()


class Bench:
    """The measures on one network: through `line`, a delay line to the
    server. Logs written here carry the network in their prefix."""

    def __init__(self, s3wal, server, scratch, table, network, line):
        self.s3wal = s3wal
        self.server = server
        self.scratch = scratch
        self.table = table
        self.network = network
        self.line = line
        self.endpoint = line.endpoint
        self.tag = "far" if network == FAR else "loop"
        # A median of fewer runs where every run waits on the network.
        self.repeat = 1 if network == FAR else 3
        # The median curl PUT of a small record, which appends compare with.
        self.curl_put_time = None
        self.env = dict(os.environ,
                        AWS_ENDPOINT_URL=self.endpoint,
                        AWS_BUCKET_NAME=server.bucket,
                        AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_REGION=REGION)

    def cell(self, measure, value, target=""):
        self.table.cell(measure, self.network, value, target)

    def ratio(self, name, value, target=""):
        self.table.ratio(name, self.network, value, target)

    def s3wal_env(self, prefix, bucket=None, lock_dir=None, endpoint=None):
        return dict(self.env, AWS_PREFIX=prefix, AWS_BUCKET_NAME=bucket or self.server.bucket,
                    AWS_ENDPOINT_URL=endpoint or self.endpoint,
                    S3WAL_LOCK_DIR=lock_dir or os.path.join(self.scratch, "locks"))

    def run(self, args, prefix, lock_dir=None, stdin=None, bucket=None):
        return subprocess.run([self.s3wal] + args, env=self.s3wal_env(prefix, bucket, lock_dir),
                              input=stdin, cwd=self.scratch, capture_output=True, check=True)

    def counted(self, command):
        """The requests the delay line saw while `command()` ran, and its
        wall time."""
        mark = self.line.mark()
        start = time.perf_counter()
        command()
        seconds = time.perf_counter() - start
        return self.line.since(mark), seconds

    def requests(self, args, prefix, lock_dir=None, bucket=None):
        """The requests and the wall time of one s3wal run."""
        return self.counted(lambda: self.run(args, prefix, lock_dir, bucket=bucket))

    def measured(self, argv, env, stdin_path=None):
        """Wall time, peak RSS (MiB) and requests of one run of `argv`,
        stdout discarded; its stdin fed from the file at `stdin_path` through
        a pipe, as from tar, where the size is not known in advance."""
        mark = self.line.mark()
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=self.scratch, stdout=subprocess.DEVNULL,
                                 stdin=subprocess.PIPE if stdin_path else None)
        feeder = None
        if stdin_path:
            feeder = threading.Thread(target=feed, args=(stdin_path, child.stdin))
            feeder.start()
        peak_kib = peak_rss_kib(child)
        if feeder:
            feeder.join()
        assert child.wait() == 0, (argv, child.returncode)
        return time.perf_counter() - start, peak_kib / 1024, self.line.since(mark)

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

    def curl_put(self, key, body_path, endpoint=None):
        url = self.server.presign(endpoint or self.endpoint, "PUT", key)
        subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", "-X", "PUT", "-H", "If-None-Match: *",
                        "--data-binary", "@" + body_path, url], check=True)

    def curl_get(self, key, endpoint=None):
        url = self.server.presign(endpoint or self.endpoint, "GET", key)
        subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", url], check=True)

    def one_request(self):
        """What the line itself adds: one curl GET process, one request on
        a fresh connection (the far line should add its round trip)."""
        note(f"[{self.network}] one curl GET")
        body = os.path.join(self.scratch, "body")
        with open(body, "wb") as f:
            f.write(record(1, b"Record #1"))
        key = f"bench/get-{self.tag}/" + key_name(1)
        self.curl_put(key, body)
        seconds = self.wall(lambda: self.curl_get(key), 11)
        self.cell("one curl GET process (one request), median of 11", f"{seconds * 1000:.1f} ms",
                  f"{DELAY_MS} ms more at {DELAY_MS} ms")
        return seconds

    def one_append(self):
        note(f"[{self.network}] one append process vs curl vs aws s3api put-object")
        prefix = f"bench/one-{self.tag}"
        self.run(["append", "warm the hint"], prefix)
        counter = iter(range(10**9))
        repeat = 21 if self.network == LOOPBACK else 11
        appended = self.wall(lambda: self.run(["append", "x%d" % next(counter)], prefix), repeat)
        requests, _ = self.requests(["append", "counted"], prefix)
        body = os.path.join(self.scratch, "body")
        with open(body, "wb") as f:
            f.write(record(1, b"Record #1"))
        keys = iter(range(10**9))
        curl = self.wall(lambda: self.curl_put(f"bench/curl-{self.tag}/" + key_name(next(keys) + 1), body),
                         repeat)
        self.curl_put_time = curl
        self.cell("one `append` process (warm hint), median of 21 / 11",
                  f"{appended * 1000:.1f} ms, {requests}: {appended / curl:.2f}x curl")
        self.ratio("warm `append` / curl PUT", appended / curl, "≤ 2.2x at 20 ms")
        self.cell("one curl presigned PUT process, median of 21 / 11", f"{curl * 1000:.1f} ms")
        aws = shutil.which("aws")
        if aws:
            aws_keys = iter(range(10**9))

            def put():
                subprocess.run([aws, "s3api", "put-object", "--endpoint-url", self.endpoint,
                                "--bucket", self.server.bucket,
                                "--key", f"bench/aws-{self.tag}/" + key_name(next(aws_keys) + 1),
                                "--body", body], check=True, stdout=subprocess.DEVNULL, env=self.env)

            aws_time = self.wall(put, 5)
            requests, _ = self.counted(put)
            self.cell("one `aws s3api put-object` process, median of 5", f"{aws_time * 1000:.0f} ms, {requests}")
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
            # Each a median of 3, each run from a lock folder of its own.
            runs = {"fresh recover": [], "warm recover": [], "fresh append": []}
            for run in range(3):
                fresh = os.path.join(self.scratch, f"fresh-{self.tag}-{n}-{run}")
                runs["fresh recover"].append(self.requests(["recover"], prefix, fresh + "-recover", bucket))
                runs["warm recover"].append(self.requests(["recover"], prefix, fresh + "-recover", bucket))
                runs["fresh append"].append(self.requests(["append", "fresh"], prefix, fresh + "-append", bucket))
            seconds = {what: statistics.median(run[1] for run in done) for what, done in runs.items()}
            self.cell(f"fresh-runner `recover` at N = {n:,}, median of 3",
                      f"{runs['fresh recover'][0][0]}, {seconds['fresh recover'] * 1000:.0f} ms", "≤ 2 requests")
            self.cell(f"warm `recover` at N = {n:,}, median of 3",
                      f"{runs['warm recover'][0][0]}, {seconds['warm recover'] * 1000:.0f} ms", "≤ 2 requests")
            ratio = seconds["fresh append"] / self.curl_put_time
            self.cell(f"fresh-runner `append` at N = {n:,}, median of 3",
                      f"{runs['fresh append'][0][0]}, {seconds['fresh append'] * 1000:.0f} ms: {ratio:.2f}x curl",
                      "≤ 4 requests")
            self.ratio(f"fresh-runner `append` / curl PUT, N = {n:,}", ratio)

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

    def rclone(self, parallel, bucket, prefix):
        """`rclone copy` of a log's objects into an empty folder, with
        `parallel` transfers and checkers, configured by environment
        variables alone: wall time, peak RSS, requests."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env.update(RCLONE_CONFIG=os.path.join(self.scratch, "no-rclone.conf"),
                   RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                   RCLONE_CONFIG_BENCH_ENDPOINT=self.endpoint, RCLONE_CONFIG_BENCH_REGION=REGION,
                   RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=self.server.access_key,
                   RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=self.server.secret_key,
                   RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true")
        # Into memory where there is some: the disk is not what is compared.
        folder = tempfile.mkdtemp(prefix="s3wal-rclone.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        try:
            # The trailing slash: s3s-fs answers a HEAD of the folder's own
            # name with a 500, which rclone retries for two minutes. The
            # records only, as `dump` reads: not s3wal's hint beside them.
            return self.measured(["rclone", "copy", "--quiet", "--transfers", str(parallel),
                                  "--checkers", str(parallel), "--exclude", "/.s3wal/**",
                                  f"bench:{bucket}/{prefix}/", folder], env)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def rate(self, label, runs, target=""):
        """A cell for `runs` of reading the dump's records: the median rate,
        the peak RSS, the requests of one run. Returns the median time."""
        seconds = statistics.median(run[0] for run in runs)
        self.cell(f"{label}, median of {len(runs)}: rate, peak RSS, requests",
                  f"{DUMP_RECORDS / seconds:.0f} records/s, {max(run[1] for run in runs):.1f} MiB, {runs[0][2]}",
                  target)
        return seconds

    def dump(self):
        note(f"[{self.network}] dump of {DUMP_RECORDS:,} records vs rclone copy, a sequential reader, aws s3 cp")
        bucket, prefix = "bench-dump", "wal"
        self.server.fill(bucket, prefix, DUMP_RECORDS)
        self.run(["recover"], prefix, bucket=bucket)
        # Three rounds, each of every reader at every parallelism, so that
        # whatever else the machine does weighs on each alike.
        runs = {(what, parallel): [] for what in ("dump", "rclone") for parallel in PARALLEL}
        for _ in range(3):
            for parallel in PARALLEL:
                runs["dump", parallel].append(self.measured(
                    [self.s3wal, "--parallel", str(parallel), "dump"], self.s3wal_env(prefix, bucket)))
                runs["rclone", parallel].append(self.rclone(parallel, bucket, prefix))
        dump_times = {}
        for parallel in PARALLEL:
            dump_times[parallel] = self.rate(f"`dump --parallel {parallel}` of {DUMP_RECORDS:,} records",
                                             runs["dump", parallel],
                                             "≥ 1 000 records/s at 20 ms; not slower at 256")
            rclone_time = self.rate(f"`rclone copy --transfers {parallel} --checkers {parallel}` "
                                    "of the same objects", runs["rclone", parallel])
            self.ratio(f"`rclone copy` time / `dump` time, parallel {parallel}",
                       rclone_time / dump_times[parallel], "≥ 1.0x")
        self.ratio(f"`dump --parallel {PARALLEL[1]}` time / `--parallel {PARALLEL[0]}` time",
                   dump_times[PARALLEL[1]] / dump_times[PARALLEL[0]], "≤ 1.0x at 20 ms")
        urls = [self.server.presign(self.endpoint, "GET", prefix + "/" + key_name(n), bucket=bucket)
                for n in range(1, SEQUENTIAL_RECORDS + 1)]

        def sequential_reader():
            """One keep-alive connection, one GET at a time: what a loop over
            the records does."""
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
        self.cell(f"sequential keep-alive reader ({SEQUENTIAL_RECORDS:,} GETs)",
                  f"{1 / sequential:.0f} records/s: `dump --parallel {PARALLEL[0]}` is "
                  f"{DUMP_RECORDS / dump_times[PARALLEL[0]] * sequential:.0f}x that",
                  "dump ≥ 5x sequential at 20 ms")
        aws = shutil.which("aws")
        if aws:
            # Its default of 10 requests in flight, over the shortest log.
            folder = os.path.join(self.scratch, f"aws-cp-{self.tag}")
            requests, seconds = self.counted(lambda: subprocess.run(
                [aws, "s3", "cp", "--recursive", "--quiet", "--endpoint-url", self.endpoint,
                 f"s3://bench-n{SIZES[0]}/wal/", folder], check=True, env=self.env))
            count = len(os.listdir(folder))
            self.cell("`aws s3 cp --recursive` of a log", f"{count / seconds:.0f} records/s, {requests}")
        else:
            self.cell("`aws s3 cp --recursive` of a log", "not installed (pip install awscli)")

    def dump_memory(self):
        note(f"[{self.network}] peak RSS of dump")
        peaks = []
        for n in SIZES[1:]:
            _, peak, _ = self.measured([self.s3wal, "dump"], self.s3wal_env("wal", f"bench-n{n}"))
            peaks.append(f"{peak:.1f} MiB")
        self.cell("peak RSS of `dump` over " + " / ".join(f"{n:,}" for n in SIZES[1:]) + " records",
                  " / ".join(peaks),
                  "≤ 16 MiB at the default --parallel 64, flat in N")

    def big_records(self):
        """Peak RSS and time of one big record through append (from a pipe,
        as `tar c | s3wal append -`), read and dump, beside a curl PUT and
        GET of the same bytes; straight to the server, where one big request
        is all the time."""
        endpoint = self.server.endpoint
        for mib in BIG_MIB:
            note(f"[{self.network}] a {mib} MiB record: append from a pipe, read, dump; curl PUT, GET")
            prefix = f"bench/big-{mib}"
            path = os.path.join(self.scratch, f"big-{mib}")
            with open(path, "wb") as out:
                for _ in range(mib):
                    out.write(os.urandom(1024 * 1024))
            env = self.s3wal_env(prefix, endpoint=endpoint)
            measured = {}
            for what, args in (("append", ["append", "-"]), ("read", ["read", "1"]), ("dump", ["dump", "--raw"])):
                seconds, peak, _ = self.measured([self.s3wal] + args, env, path if what == "append" else None)
                measured[what] = (seconds, peak)
            curl_key = prefix + "/curl"
            put = self.wall(["curl", "-sf", "-o", "/dev/null", "-T", path,
                             self.server.presign(endpoint, "PUT", curl_key)], 1)
            get = self.wall(lambda: self.curl_get(curl_key, endpoint), 1)
            versus = {"append": f": curl PUT {put:.2f} s", "read": f": curl GET {get:.2f} s", "dump": ""}
            for what, (seconds, peak) in measured.items():
                self.cell(f"`{what}` of a {mib} MiB record: time, peak RSS",
                          f"{seconds:.2f} s, {peak:.0f} MiB{versus[what]}",
                          "RSS ≤ 1.1x the record" if what != "dump" else "RSS ≤ 2.4x")
            if mib == BIG_MIB[-1]:
                self.ratio(f"{mib} MiB `append` from a pipe / curl PUT", measured["append"][0] / put, "≤ 1.5x")
                self.ratio(f"{mib} MiB `read` / curl GET", measured["read"][0] / get, "≤ 1.5x")
                self.ratio(f"{mib} MiB peak RSS / record size, `append` and `read`",
                           max(measured["append"][1], measured["read"][1]) / mib, "≤ 1.1x")
            os.remove(path)

    def sizes(self, static):
        for label, path in (("release binary (dynamic)", self.s3wal), ("release binary (static)", static)):
            if path and os.path.exists(path):
                self.cell(label, f"{os.path.getsize(path) / 1e6:.2f} MB", "≤ 3 MB static")


def main():
    s3wal = os.path.abspath(sys.argv[1])
    static = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    delay_line = DelayLine.build()
    scratch = tempfile.mkdtemp(prefix="s3wal-bench.")
    server = Server(scratch)
    lines = []
    started = time.monotonic()
    try:
        upstream = urllib.parse.urlparse(server.endpoint).netloc
        table = Table()
        benches = []
        for network, rtt_ms in ((LOOPBACK, 0), (FAR, DELAY_MS)):
            line = DelayLine(delay_line, upstream, rtt_ms, os.path.join(scratch, f"requests-{rtt_ms}ms.log"))
            lines.append(line)
            benches.append(Bench(s3wal, server, scratch, table, network, line))
        once = [bench.one_request() for bench in benches]
        table.cell("round trip the line adds to a GET", FAR, f"{(once[1] - once[0]) * 1000:.1f} ms",
                   f"{DELAY_MS} ms")
        for bench in benches:
            bench.one_append()
            bench.fresh_runner()
            bench.batch()
            bench.dump()
        loopback = benches[0]
        loopback.dump_memory()
        loopback.big_records()
        loopback.sizes(static)
        note(f"\nbench: {time.monotonic() - started:.0f} s\n")
        table.print()
    finally:
        for line in lines:
            line.stop()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

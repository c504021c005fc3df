"""The benchmark runner behind scripts/bench: times each tool as a child process and reads
its own resource usage (wall seconds, user+sys CPU seconds, peak RSS) from wait4()."""
import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="100000,1000000", help="item counts of the ~200-byte tables, comma-separated")
p.add_argument("--items", type=int, help="one ~200-byte table of this many items (instead of --sizes)")
p.add_argument("--large", type=int, default=20_000, help="items in the ~30 KB table (0: none)")
p.add_argument("--compare-max", type=int, default=100_000,
               help="dynamodump and dynein run on tables of at most this many items (beyond, a run takes them minutes)")
p.add_argument("--dynein", help="awslabs' dynein binary (dy)")
p.add_argument("--dynein-src", help="a clone of awslabs/dynein outside this repository, built here with cargo")
p.add_argument("--runs", type=int, default=3)
p.add_argument("--out", default="docs/BENCHMARKS.md")
p.add_argument("--canned-port", type=int, default=18020)
p.add_argument("--fleets", default="1000,10000",
               help="table counts of the fleets of 10-item tables exported from the canned endpoint, comma-separated "
                    "(each is also a number of runs `ddbx list` lists and `ddbx prune` prunes nine tenths of; "
                    "empty: none)")
p.add_argument("--s3-runs", type=int, default=1000,
               help="runs of one app made in moto's S3 (copies of one real run), of which `ddbx prune` deletes nine tenths (0: none)")
p.add_argument("--fleet-only", action="store_true",
               help="run only the fleet and catalog benchmarks and print their section (docs/BENCHMARKS.md is left as it is)")
p.add_argument("--canned-sizes", default="1000000",
               help="item counts of the ~200-byte tables served by the canned endpoint, comma-separated "
                    "(add 10000000 for the ten-million-item run: about 15 minutes more)")
args = p.parse_args()
sizes = [args.items] if args.items else [int(n) for n in args.sizes.split(",") if n]
canned_sizes = [int(n) for n in args.canned_sizes.split(",") if n]
fleets = [int(n) for n in args.fleets.split(",") if n]

target = os.environ["CARGO_TARGET_DIR"]
ddb = os.environ["DDBX_DYNAMODB_ENDPOINT"]
host, port = ddb.removeprefix("http://").split(":")
ddbx = [f"{target}/profiling/ddbx", "--endpoint-url", ddb, "--no-progress"]
bench = [f"{target}/profiling/ddbx-bench", "--endpoint-url", ddb]
dynamodump = [os.path.join(os.path.dirname(sys.executable), "dynamodump")]
env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
           AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", RUST_LOG="warn")
work = tempfile.mkdtemp(prefix="ddbx-bench-")

dynein = args.dynein
if args.dynein_src:
    # Built where it lies, into its own target folder; its code never enters this repository.
    dynein_target = os.path.join(os.path.abspath(args.dynein_src), "target")
    print(f"building dynein from {args.dynein_src}", file=sys.stderr)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--manifest-path", os.path.join(args.dynein_src, "Cargo.toml")],
                   env=dict(os.environ, CARGO_TARGET_DIR=dynein_target, RUSTUP_TOOLCHAIN="stable"), check=True)
    dynein = os.path.join(dynein_target, "release", "dy")
dynein_version = subprocess.run([dynein, "--version"], capture_output=True, text=True).stdout.strip() if dynein else None
# dynein keeps its settings under $HOME/.dynein: give it a home of its own.
dynein_env = dict(env, HOME=os.path.join(work, "dynein-home"))
os.makedirs(dynein_env["HOME"], exist_ok=True)


# Peak RSS is read by GNU time, which forks the tool: a process forked from this Python
# interpreter and exec'd would report at least the interpreter's own peak (Linux keeps
# the larger of the old and new images' peaks across exec).
rss_file = os.path.join(work, "rss")
timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file]


def measured(status, ru, start, what, output):
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(what)}\n{output[-3000:]}")
    rss_kb = int(open(rss_file).read().split()[-1])
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": rss_kb / 1024}


def measure(cmd, cwd=None, env=env):
    start = time.monotonic()
    proc = subprocess.Popen(timed + cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    return measured(status, ru, start, cmd, proc.stderr.read().decode(errors="replace"))


def measure_answering(cmd, answer, env=env):
    """measure() for a tool that asks a question on its terminal (dynein asks for a yes
    before exporting a provisioned table): run under a pseudo-terminal, answer, drain."""
    import pty
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(timed[0], timed + cmd, env)
    out, answered = b"", False
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out = (out + chunk)[-4000:]
        if not answered and b"?" in out:
            os.write(fd, answer)
            answered = True
    _, status, ru = os.wait4(pid, 0)
    return measured(status, ru, start, cmd, out.decode(errors="replace"))


def rss_over_time(cmd):
    """Run cmd once, sampling its resident memory every 50 ms from /proc: [(seconds, MB)]."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    while proc.poll() is None:
        try:
            status = open(f"/proc/{proc.pid}/status").read()
            kb = int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1])
            samples.append((time.monotonic() - start, kb / 1024))
        except (OSError, StopIteration):
            pass
        time.sleep(0.05)
    return samples


memory = {}  # table label -> RSS samples of one ddbx export


def run(cmd, **kw):
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, **kw)


def drop(*tables):
    import boto3
    client = boto3.client("dynamodb", endpoint_url=ddb, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    for t in tables:
        try:
            client.delete_table(TableName=t)
        except client.exceptions.ResourceNotFoundException:
            pass


results = {}  # table label -> tool -> [measurements]
tables = [(f"{n:,} items of ~200 B", n, 200) for n in sizes]
if args.large:
    tables.append((f"{args.large:,} items of ~30 KB", args.large, 30_000))


def record(label, name, m):
    results.setdefault(label, {}).setdefault(name, []).append(m)


def bench_table(label, items, item_bytes):
    compare = items <= args.compare_max
    table = f"BENCH_{items}_{item_bytes}"
    print(f"loading {items} items of ~{item_bytes} bytes into {table}", file=sys.stderr)
    run(bench + ["load", "--table", table, "--items", str(items), "--item-bytes", str(item_bytes)])
    export_root = None
    for r in range(args.runs):
        print(f"{label}: export round {r + 1}/{args.runs}", file=sys.stderr)
        for name, codec in [("ddbx export (gzip)", "gzip"), ("ddbx export (zstd)", "zstd")]:
            out = os.path.join(work, f"x{r}{codec}")
            record(label, name, measure(ddbx + ["export", "--app", "bench", "--table", table, "--to", out,
                                         "--read-ratio", "1.0", "--segments", "8", "--workers", "8", "--compression", codec]))
            if codec == "gzip" and r == 0:
                export_root = out
            else:
                shutil.rmtree(out)
        if compare:
            dump = os.path.join(work, f"dump{r}")
            record(label, "dynamodump backup", measure(dynamodump + ["-m", "backup", "-r", "us-east-1", "--host", host, "--port", port,
                                                             "--accessKey", "bench", "--secretKey", "bench", "-s", table,
                                                             "--dumpPath", dump, "--noConfirm"]))
            if r > 0:
                shutil.rmtree(dump)
            if dynein:
                out = os.path.join(work, "dynein.jsonl")
                record(label, "dynein export (jsonl)", measure_answering([dynein, "--region", "local", "--port", port, "--table", table,
                                                                   "export", "--output-file", out, "--format", "jsonl"],
                                                                  b"y", env=dynein_env))
                os.remove(out)
        record(label, "null scanner (8 segments)", measure(bench + ["null-scan", "--table", table, "--segments", "8"]))
    if item_bytes == 200:
        out = os.path.join(work, "memory")
        memory[label] = rss_over_time(ddbx + ["export", "--app", "bench", "--table", table, "--to", out, "--read-ratio", "1.0",
                                              "--segments", "8", "--workers", "8"])
        shutil.rmtree(out)

    run_root = next(os.path.join(dp) for dp, dn, fn in os.walk(export_root) if "restore-plan.json" in fn)
    t2 = f"{table}_in"
    for r in range(args.runs):
        print(f"{label}: import round {r + 1}/{args.runs}", file=sys.stderr)
        imports = [("ddbx import", ["--no-validate-first"])]
        if compare:
            imports.append(("ddbx import (validating first)", []))
        for name, extra in imports:
            run(bench + ["load", "--table", t2, "--items", "0"])  # an empty table with the same key
            record(label, name, measure(ddbx + ["import", "--from", run_root, "--table-map", f"{table}={t2}", "--write-ratio", "1.0",
                                         "--workers", "8"] + extra))
        if compare:
            run(bench + ["load", "--table", t2, "--items", "0"])
            record(label, "dynamodump restore", measure(dynamodump + ["-m", "restore", "-r", "us-east-1", "--host", host, "--port", port,
                                                              "--accessKey", "bench", "--secretKey", "bench", "-s", table, "-d", t2,
                                                              "--dumpPath", os.path.join(work, "dump0"), "--noConfirm", "--dataOnly"]))
        record(label, "null writer (8 writers)", measure(bench + ["load", "--table", t2, "--items", str(items), "--writers", "8",
                                                           "--item-bytes", str(item_bytes)]))
    shutil.rmtree(export_root)
    shutil.rmtree(os.path.join(work, "dump0"), ignore_errors=True)
    drop(table, t2)  # the emulator keeps everything in memory


for label, items, item_bytes in ([] if args.fleet_only else tables):
    bench_table(label, items, item_bytes)
# ddbx's own ceiling: the same items served from memory by a canned endpoint, which also
# takes BatchWriteItem calls and discards them; compared with the CPU of merely compressing
# ddbx's output bytes again with the same codec (export) and with the null writer pointed
# at the same endpoint (import). The endpoint reports 10,000,000 WCU so that the write
# rate never binds; it counts the puts it takes and a sum of their keys' hashes, so each
# import is checked to have written every item exactly once.
canned_url = f"http://127.0.0.1:{args.canned_port}"
canned_tables = [(f"canned endpoint, {n:,} items of ~200 B", n, 200) for n in canned_sizes]
if args.large:
    canned_tables.append((f"canned endpoint, {args.large:,} items of ~30 KB", args.large, 30_000))
compress = {}  # label -> codec -> [(seconds, raw bytes, compressed bytes)]
item_bytes = {}  # label -> the items' total size as DynamoDB counts it
canned_memory = {}  # label -> {"export": samples, "import": samples}


def start_canned(table, items, item_bytes_each, *extra):
    proc = subprocess.Popen(bench[:1] + ["--endpoint-url", canned_url, "canned", "--table", table, "--items", str(items),
                                         "--item-bytes", str(item_bytes_each), "--port", str(args.canned_port),
                                         "--write-units", "10000000"] + list(extra),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stderr.readline()  # "canned endpoint on ...": it is listening
    return proc


def canned_stats():
    import json
    import urllib.request
    req = urllib.request.Request(canned_url, data=b"{}", headers={"x-amz-target": "DdbxBench.Stats"})
    return json.load(urllib.request.urlopen(req))


def checked_import(label, name, cmd, items):
    """measure() an import into the canned endpoint, then check with its counts that
    every item was written exactly once."""
    before = canned_stats()
    m = measure(cmd)
    after = canned_stats()
    puts = after["puts"] - before["puts"]
    key_sum = (after["key_sum"] - before["key_sum"]) % 2**64
    if puts != items or key_sum != after["expected_key_sum"]:
        sys.exit(f"{label}: {name} wrote {puts} puts of {items} items, keys {'match' if key_sum == after['expected_key_sum'] else 'do not match'}")
    m["unprocessed"] = after["unprocessed"] - before["unprocessed"]
    record(label, name, m)


def bench_canned(label, items, item_bytes_each):
    table = "CANNED"
    canned = start_canned(table, items, item_bytes_each)
    big = items > 1_000_000
    try:
        item_bytes[label] = canned_stats()["item_bytes"]
        run_root = None
        for r in range(args.runs):
            print(f"{label}: round {r + 1}/{args.runs}", file=sys.stderr)
            for codec in ["gzip", "zstd"]:
                out = os.path.join(work, f"canned{r}{codec}")
                record(label, f"ddbx export ({codec})",
                       measure([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "canned", "--table", table,
                                "--to", out, "--read-ratio", "1.0", "--segments", "8", "--workers", "8", "--compression", codec]))
                files = [os.path.join(dp, f) for dp, _, fn in os.walk(out) for f in fn if os.path.basename(dp) == "data"]
                secs, raw, packed = subprocess.run(bench[:1] + ["--endpoint-url", canned_url, "compress", "--codec", codec] + files,
                                                   env=env, check=True, capture_output=True, text=True).stdout.split()
                compress.setdefault(label, {}).setdefault(codec, []).append((float(secs), int(raw), int(packed)))
                if codec == "gzip" and r == 0:
                    export_out = out
                    run_root = next(dp for dp, dn, fn in os.walk(out) if "restore-plan.json" in fn)
                else:
                    shutil.rmtree(out)
            imports = [("ddbx import", [])] + ([] if big else [("ddbx import (--no-validate-first)", ["--no-validate-first"])])
            for name, extra in imports:
                shutil.rmtree(os.path.join(run_root, "_import"), ignore_errors=True)
                checked_import(label, name, [ddbx[0], "--endpoint-url", canned_url, "--no-progress", "import", "--from", run_root,
                                             "--table-map", f"{table}={table}_in", "--write-ratio", "1.0", "--workers", "8"] + extra,
                               items)
            record(label, "null writer (8 writers)", measure(bench[:1] + ["--endpoint-url", canned_url, "null-write", "--table",
                                                                          f"{table}_in", "--items", str(items), "--item-bytes",
                                                                          str(item_bytes_each), "--writers", "8"]))
        if item_bytes_each == 200:
            out = os.path.join(work, "canned-memory")
            export_samples = rss_over_time([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "canned",
                                            "--table", table, "--to", out, "--read-ratio", "1.0", "--segments", "8", "--workers", "8"])
            shutil.rmtree(out)
            shutil.rmtree(os.path.join(run_root, "_import"), ignore_errors=True)
            import_samples = rss_over_time([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "import", "--from", run_root,
                                            "--table-map", f"{table}={table}_in", "--write-ratio", "1.0", "--workers", "8"])
            canned_memory[label] = {"ddbx export (gzip)": export_samples, "ddbx import": import_samples}
    finally:
        canned.kill()
        canned.wait()
    shutil.rmtree(export_out, ignore_errors=True)


def bench_unprocessed(items=20_000):
    """Exact retries: an import where the endpoint answers a fifth of every call's requests
    (rounded down, so that each remainder is taken in the end) as UnprocessedItems, as
    DynamoDB does when a partition is busy; checked to write each item exactly once."""
    label = f"canned endpoint, {items:,} items of ~200 B, 20 % of each call left unprocessed"
    canned = start_canned("CANNED", items, 200, "--unprocessed-share", "0.2")
    out = os.path.join(work, "unprocessed")
    try:
        run([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "canned", "--table", "CANNED", "--to", out])
        run_root = next(dp for dp, dn, fn in os.walk(out) if "restore-plan.json" in fn)
        for r in range(args.runs):
            print(f"{label}: round {r + 1}/{args.runs}", file=sys.stderr)
            shutil.rmtree(os.path.join(run_root, "_import"), ignore_errors=True)
            checked_import(label, "ddbx import", [ddbx[0], "--endpoint-url", canned_url, "--no-progress", "import", "--from",
                                                  run_root, "--table-map", "CANNED=CANNED_in", "--write-ratio", "1.0",
                                                  "--workers", "8"], items)
    finally:
        canned.kill()
        canned.wait()
    shutil.rmtree(out, ignore_errors=True)
    return label, items


# Fleets: an app of N tables of 10 items each (canned endpoint, ListTables paged 100 names
# at a time as DynamoDB pages it), exported in one run: ddbx's CPU per table and its peak
# RSS as N grows. Then the catalog at that scale: a base holding as many runs of one app
# (each a copy of one real 1-table run, named for its own hour), listed, then pruned to its
# newest tenth.
fleet_results = {}  # tables -> measurement
catalog_results = {}  # what -> measurement
catalog_scaling = {}  # (command, runs) -> median measurement, for the per-run figures


# The fleets are written to memory (tmpfs) where there is one: what is measured is ddbx's
# CPU, not the disk's (on ext4, creating ~10 files a table costs the kernel as much again,
# more when many files were just deleted).
fleet_work = tempfile.mkdtemp(prefix="ddbx-bench-fleet-", dir="/dev/shm" if os.path.isdir("/dev/shm") else work)


def bench_fleets():
    for n in fleets:
        canned = start_canned("FLEET_", 10, 200, "--fleet-tables", str(n))
        out = os.path.join(fleet_work, f"fleet{n}")
        try:
            runs_m = []
            for r in range(args.runs):
                print(f"fleet of {n:,} tables: round {r + 1}/{args.runs}", file=sys.stderr)
                runs_m.append(measure([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "fleet",
                                       "--tables", "FLEET_", "--to", out, "--read-ratio", "1.0"]))
                flags = [f for _, _, fn in os.walk(out) for f in fn if f.startswith("BACKUP_")]
                if flags != ["BACKUP_COMPLETE_SUCCESS"]:
                    sys.exit(f"fleet of {n} tables: the export left {flags}")
                if r + 1 < args.runs:
                    shutil.rmtree(out)
            fleet_results[n] = {k: statistics.median(m[k] for m in runs_m) for k in runs_m[0]}
        finally:
            canned.kill()
            canned.wait()
        if n != max(fleets):
            shutil.rmtree(out, ignore_errors=True)
    return os.path.join(fleet_work, f"fleet{max(fleets)}")


def bench_catalog(runs):
    """`ddbx list` of a base holding `runs` runs of one app, then `ddbx prune --keep-last`
    a tenth of them (the rest deleted)."""
    base = os.path.join(fleet_work, "catalog")
    canned = start_canned("ONE", 10, 200)
    try:
        run([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "many", "--table", "ONE",
             "--to", base, "--run-time", "2020-01-01T00:00:00Z"])
    finally:
        canned.kill()
        canned.wait()
    app_dir = os.path.join(base, "us-east-1", "many")
    first = os.path.join(app_dir, "2020", "01", "01", "00_00.00")
    start = datetime.datetime(2020, 1, 1)
    print(f"catalog: making {runs:,} runs", file=sys.stderr)
    for i in range(1, runs):
        t = start + datetime.timedelta(hours=i)
        shutil.copytree(first, os.path.join(app_dir, t.strftime("%Y/%m/%d/%H_%M.%S")))
    listed = f"ddbx list ({runs:,} runs)"
    dry = f"ddbx prune --dry-run ({runs:,} runs, {runs - runs // 10:,} to delete)"
    pruned = f"ddbx prune ({runs:,} runs, {runs - runs // 10:,} deleted)"
    for r in range(args.runs):
        print(f"catalog: ddbx list of {runs:,} runs, round {r + 1}/{args.runs}", file=sys.stderr)
        catalog_results.setdefault(listed, []).append(
            measure([ddbx[0], "--no-progress", "list", "--to", base, "--app", "many"]))
        catalog_results.setdefault(dry, []).append(
            measure([ddbx[0], "--no-progress", "prune", "--to", base, "--app", "many", "--keep-last", str(runs // 10),
                     "--dry-run"]))
    print(f"catalog: ddbx prune of {runs - runs // 10:,} runs", file=sys.stderr)
    catalog_results[pruned] = [
        measure([ddbx[0], "--no-progress", "prune", "--to", base, "--app", "many", "--keep-last", str(runs // 10)])]
    for command, what in [("ddbx list", listed), ("ddbx prune --dry-run", dry), ("ddbx prune", pruned)]:
        catalog_scaling[(command, runs)] = {k: statistics.median(m[k] for m in catalog_results[what])
                                            for k in catalog_results[what][0]}
    left = sum(1 for dp, _, fn in os.walk(app_dir) for f in fn if f == "BACKUP_COMPLETE_SUCCESS")
    if left != runs // 10:
        sys.exit(f"catalog: prune left {left} runs, not {runs // 10}")
    shutil.rmtree(base)


def bench_catalog_s3(runs):
    """`ddbx list` and `ddbx prune` of nine tenths of `runs` runs of one app in moto's S3,
    where a prune waits on requests (a run's leases, its flags, its listing, its deletes)."""
    import boto3
    from concurrent.futures import ThreadPoolExecutor
    s3_url = os.environ["DDBX_S3_ENDPOINT"]
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    bucket = f"ddbx-bench-catalog-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    base = f"s3://{bucket}/b"
    on_s3 = [ddbx[0], "--s3-endpoint-url", s3_url, "--no-progress"]
    canned = start_canned("ONE", 10, 200)
    try:
        run(on_s3 + ["--endpoint-url", canned_url, "export", "--app", "many", "--table", "ONE", "--to", base,
                     "--run-time", "2020-01-01T00:00:00Z"])
    finally:
        canned.kill()
        canned.wait()
    first = "b/us-east-1/many/2020/01/01/00_00.00/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=first)["Contents"]]
    start = datetime.datetime(2020, 1, 1)
    print(f"catalog on S3: making {runs:,} runs", file=sys.stderr)

    def copy_run(i):
        to = "b/us-east-1/many/" + (start + datetime.timedelta(hours=i)).strftime("%Y/%m/%d/%H_%M.%S") + "/"
        for k in keys:
            s3.copy_object(Bucket=bucket, Key=to + k[len(first):], CopySource={"Bucket": bucket, "Key": k})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(copy_run, range(1, runs)))
    print(f"catalog on S3: ddbx list and prune of {runs - runs // 10:,} runs", file=sys.stderr)
    catalog_results[f"ddbx list ({runs:,} runs, S3)"] = [
        measure(on_s3 + ["list", "--to", base, "--app", "many"])]
    catalog_results[f"ddbx prune ({runs:,} runs, {runs - runs // 10:,} deleted, S3)"] = [
        measure(on_s3 + ["prune", "--to", base, "--app", "many", "--keep-last", str(runs // 10)])]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="b/")
    left = sum(1 for page in pages for o in page.get("Contents", []) if o["Key"].endswith("/BACKUP_COMPLETE_SUCCESS"))
    if left != runs // 10:
        sys.exit(f"catalog on S3: prune left {left} runs, not {runs // 10}")


def fleet_section():
    rows = sorted(fleet_results.items())
    md = ("| tables of 10 items, one run | wall s | CPU s | CPU ms per table | peak RSS MB |\n|---|---:|---:|---:|---:|\n"
          + "".join(f"| {n:,} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['cpu'] / n * 1e3:.2f} | {m['rss_mb']:.0f} |\n" for n, m in rows))
    if len(rows) > 1:
        (a, ma), (b, mb) = rows[0], rows[-1]
        md += (f"\nCPU per table added from {a:,} to {b:,} tables: {(mb['cpu'] - ma['cpu']) / (b - a) * 1e3:.2f} ms (target ≤ 2); "
               f"peak RSS {mb['rss_mb'] / ma['rss_mb']:.2f}× ({ma['rss_mb']:.0f} → {mb['rss_mb']:.0f} MB).\n")
    md += ("\n| catalog | wall s | CPU s | peak RSS MB |\n|---|---:|---:|---:|\n"
           + "".join(f"| {what} | {statistics.median(m['wall'] for m in ms):.2f} | {statistics.median(m['cpu'] for m in ms):.2f} | "
                     f"{statistics.median(m['rss_mb'] for m in ms):.0f} |\n" for what, ms in catalog_results.items()))
    sizes = sorted({n for _, n in catalog_scaling})
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        md += f"\nFrom {a:,} to {b:,} runs (per run added: CPU; peak RSS at each):\n\n"
        md += "| catalog | CPU ms per run added | peak RSS MB |\n|---|---:|---:|\n"
        for command in dict.fromkeys(c for c, _ in catalog_scaling):
            ma, mb = catalog_scaling[(command, a)], catalog_scaling[(command, b)]
            md += (f"| {command} | {(mb['cpu'] - ma['cpu']) / (b - a) * 1e3:.2f} | "
                   f"{ma['rss_mb']:.0f} → {mb['rss_mb']:.0f} ({mb['rss_mb'] / ma['rss_mb']:.2f}×) |\n")
    return md


if args.fleet_only:
    if fleets:
        shutil.rmtree(bench_fleets(), ignore_errors=True)
        for n in fleets:
            bench_catalog(n)
    if args.s3_runs:
        bench_catalog_s3(args.s3_runs)
    print(f"Produced by `{' '.join(['scripts/bench'] + sys.argv[1:])}` on {datetime.date.today()}, medians of {args.runs} runs.\n")
    print(fleet_section())
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(fleet_work, ignore_errors=True)
    sys.exit(0)
for label, items, item_bytes_each in canned_tables:
    bench_canned(label, items, item_bytes_each)
unprocessed_table = bench_unprocessed()

if fleets:
    shutil.rmtree(bench_fleets(), ignore_errors=True)
    for n in fleets:
        bench_catalog(n)
if args.s3_runs:
    bench_catalog_s3(args.s3_runs)

# Rate accuracy: a table with 200 provisioned RCU exported at --read-ratio 0.5 must consume
# 100 RCU/s. The canned endpoint counts the units it charges in 10-second windows.
meter = os.path.join(work, "meter.json")
rate_items = 200_000
rated = subprocess.Popen(bench[:1] + ["--endpoint-url", canned_url, "canned", "--table", "RATED", "--items", str(rate_items),
                                      "--port", str(args.canned_port), "--read-units", "200", "--meter", meter],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
rated.stderr.readline()
try:
    print("rate accuracy: 200 RCU at ratio 0.5 (about 70 s)", file=sys.stderr)
    measure([ddbx[0], "--endpoint-url", canned_url, "--no-progress", "export", "--app", "rated", "--table", "RATED",
             "--to", os.path.join(work, "rated"), "--read-ratio", "0.5"])
finally:
    rated.kill()
import json  # noqa: E402
windows = json.load(open(meter))
full = windows[1:-1]  # after the first, before the last (partial) window
rate_md = ("| 10-second window | " + " | ".join(str(i + 1) for i in range(len(windows))) + " |\n|---|"
           + "---:|" * len(windows) + "\n| read units consumed | " + " | ".join(f"{w:.0f}" for w in windows) + " |\n")
worst = max(abs(w / 1000.0 - 1) for w in full) * 100 if full else float("nan")


def med(label, name, key):
    return statistics.median(m[key] for m in results[label][name])


header = "| tool | wall s | CPU s (user+sys) | peak RSS MB | items/s | CPU µs/item |\n|---|---:|---:|---:|---:|---:|\n"
table_md = ""
ratios = {}
for label, items in [(label, items) for label, items, _ in tables + canned_tables] + [unprocessed_table]:
    res = results[label]
    table_md += f"\n### {label}\n\n" + header
    for name in res:
        wall, cpu, rss = med(label, name, "wall"), med(label, name, "cpu"), med(label, name, "rss_mb")
        table_md += f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {items / wall:,.0f} | {cpu / items * 1e6:.1f} |\n"

    def ratio(what, a, b, key="wall"):
        if a in res and b in res:
            ratios[f"{label}: {what}"] = med(label, a, key) / med(label, b, key)

    ratio("ddbx export (gzip) / null scanner, wall", "ddbx export (gzip)", "null scanner (8 segments)")
    ratio("dynamodump backup / ddbx export (gzip), wall", "dynamodump backup", "ddbx export (gzip)")
    ratio("dynamodump backup / ddbx export (gzip), CPU per item", "dynamodump backup", "ddbx export (gzip)", "cpu")
    ratio("dynein export / ddbx export (gzip), wall", "dynein export (jsonl)", "ddbx export (gzip)")
    ratio("dynein export / ddbx export (gzip), CPU per item", "dynein export (jsonl)", "ddbx export (gzip)", "cpu")
    ratio("ddbx import / null writer, wall", "ddbx import", "null writer (8 writers)")
    ratio("dynamodump restore / ddbx import, wall", "dynamodump restore", "ddbx import")
    ratio("ddbx import / null writer, CPU (target ≤ 0.7)", "ddbx import", "null writer (8 writers)", "cpu")
    ratio("ddbx import (--no-validate-first) / null writer, CPU", "ddbx import (--no-validate-first)", "null writer (8 writers)", "cpu")
    for codec in ["gzip", "zstd"]:
        if label in compress:
            alone = statistics.median(c[0] for c in compress[label][codec])
            target = " (target ≤ 1.5)" if codec == "gzip" else " (target ≤ 2)"
            ratios[f"{label}: ddbx export ({codec}) CPU / compressing its output alone ({alone:.2f} s, "
                   f"{compress[label][codec][0][1] / 1e6:.1f} MB){target}"] = med(label, f"ddbx export ({codec})", "cpu") / alone
small, big = tables[0][0], tables[len(sizes) - 1][0]
if small != big:
    for name in ["ddbx export (gzip)", "ddbx import"]:
        ratios[f"{name}: peak RSS at {big} / at {small} ({med(big, name, 'rss_mb'):.0f} MB / {med(small, name, 'rss_mb'):.0f} MB)"] = \
            med(big, name, "rss_mb") / med(small, name, "rss_mb")
canned_small = [(label, n) for label, n, b in canned_tables if b == 200]
if len(canned_small) > 1:
    (one, n1), (ten, n10) = canned_small[0], canned_small[-1]
    for name in ["ddbx export (gzip)", "ddbx export (zstd)", "ddbx import"]:
        ratios[f"canned endpoint, {name}: wall at {n10:,} items / at {n1:,} (target ≤ {1.05 * n10 / n1:.1f})"] = \
            med(ten, name, "wall") / med(one, name, "wall")
        ratios[f"canned endpoint, {name}: peak RSS at {n10:,} items / at {n1:,} ({med(ten, name, 'rss_mb'):.0f} MB / "
               f"{med(one, name, 'rss_mb'):.0f} MB, target ≤ 1.10)"] = med(ten, name, "rss_mb") / med(one, name, "rss_mb")

# The physical limit: MB of items (as DynamoDB sizes them) that one core carries per second.
limit_md = "| table | ddbx export (gzip) | ddbx export (zstd) | ddbx import |\n|---|---:|---:|---:|\n"
per_core = {}
for label, items, each in canned_tables:
    mb = item_bytes[label] / 1e6
    row = {name: mb / med(label, name, "cpu") for name in ["ddbx export (gzip)", "ddbx export (zstd)", "ddbx import"]}
    per_core[label] = row
    limit_md += f"| {label} ({mb:,.0f} MB of items) | " + " | ".join(f"{v:,.0f} MB/s" for v in row.values()) + " |\n"
# 40,000 RCU, eventually consistent: 80,000 reads of 4 KB a second, whatever the item size.
read_mb = 40_000 * 2 * 4096 / 1e6
small_row = per_core[canned_small[0][0]]
big_rows = [per_core[label] for label, _, each in canned_tables if each != 200]
# Items of at most 1 KB cost 1 WCU each: 40,000 WCU write 40,000 of them a second.
import_mb_200 = 40_000 * item_bytes[canned_small[0][0]] / canned_small[0][1] / 1e6
limit_line = (f"One core carries {small_row['ddbx export (gzip)']:,.0f} MB/s of items exported with gzip, "
              f"{small_row['ddbx export (zstd)']:,.0f} MB/s with zstd and {small_row['ddbx import']:,.0f} MB/s imported (~200-byte items"
              + (f"; {big_rows[0]['ddbx export (gzip)']:,.0f}, {big_rows[0]['ddbx export (zstd)']:,.0f} and {big_rows[0]['ddbx import']:,.0f} MB/s for ~30 KB items" if big_rows else "")
              + f"), so a table read at 40,000 RCU ({read_mb:,.0f} MB/s, eventually consistent) needs "
              f"{read_mb / small_row['ddbx export (gzip)']:.1f} cores with gzip or {read_mb / small_row['ddbx export (zstd)']:.1f} with zstd, "
              f"and one written at 40,000 WCU ({import_mb_200:.0f} MB/s of ~200-byte items, at most 41 MB/s of 1 KB multiples) needs "
              f"{import_mb_200 / small_row['ddbx import']:.2f} of a core"
              + (f" ({41 / big_rows[0]['ddbx import']:.2f} for ~30 KB items)" if big_rows else "") + ".")

marks = [0.5, 1, 2, 4, 8, 16]
memory_md = ("| ddbx export (gzip) | " + " | ".join(f"RSS at {m} s" for m in marks) + " | peak | run ends at | 95 % of peak reached at |\n|---|"
             + "---:|" * (len(marks) + 3) + "\n")


def memory_row(label, samples):
    peak = max(mb for _, mb in samples)
    at = [next((f"{mb:.0f}" for t, mb in samples if t >= m), "(ended)") for m in marks]
    reached = next(t for t, mb in samples if mb >= 0.95 * peak)
    return f"| {label} | " + " | ".join(at) + f" | {peak:.0f} | {samples[-1][0]:.1f} s | {reached:.1f} s |\n"


for label, samples in memory.items():
    memory_md += memory_row(label, samples)
marks = [1, 2, 4, 8, 16, 32, 64, 128]
canned_memory_md = ""
for name in ["ddbx export (gzip)", "ddbx import"]:
    canned_memory_md += ("\n| " + name + " | " + " | ".join(f"RSS at {m} s" for m in marks)
                         + " | peak | run ends at | 95 % of peak reached at |\n|---|" + "---:|" * (len(marks) + 3) + "\n")
    for label, runs in canned_memory.items():
        canned_memory_md += memory_row(label, runs[name])

# Fleets and the catalog at scale.
fleet_md = fleet_section() if fleet_results else ""

ratio_md = "| ratio | value |\n|---|---:|\n" + "".join(f"| {k} | {v:.2f} |\n" for k, v in ratios.items())
versions = subprocess.run(ddbx[:1] + ["--version"], capture_output=True, text=True).stdout.strip()
dd_version = subprocess.run([sys.executable, "-m", "pip", "show", "dynamodump"], capture_output=True, text=True).stdout
dd_version = next((l.split(":", 1)[1].strip() for l in dd_version.splitlines() if l.startswith("Version")), "?")
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
command = " ".join(["scripts/bench"] + sys.argv[1:])
tools = f"{versions}, dynamodump {dd_version}" + (f", {dynein_version} (built from its public repository, outside this one)" if dynein_version else ", dynein not given (--dynein or --dynein-src)")
report = f"""# Benchmarks

Produced by `{command}` on {datetime.date.today()}:
{os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}; {tools};
against dynalite (DynamoDB emulator, in memory) on 127.0.0.1. Medians of {args.runs} runs,
tools alternating within each round. Tables of items of about 200 bytes (string, number,
binary, bool, string set, map) and one of items of about 30 KB; dynamodump and dynein run on
the tables of at most {args.compare_max:,} items only (beyond, one of their runs takes
minutes). Each tool runs as a child process: its CPU is from wait4, its peak RSS from
GNU time. The emulator shares the machine's 2 cores, so every figure includes its load; the
null scanner and null writer show its ceiling. The "canned endpoint" tables read items from
`ddbx-bench canned` instead (Scan pages served from memory, BatchWriteItem calls metered and
discarded; it reports 10,000,000 WCU so that the write rate never binds): ddbx's own
ceiling. Its exports are compared with the CPU of compressing their output bytes again with
ddbx's compressor alone (one thread, in memory), its imports with the null writer pointed
at the same endpoint; every import there is checked, with the endpoint's count of puts and
sum of key hashes, to have written each item exactly once. "ddbx import" validates every
file before writing (the default); "20 % of each call left unprocessed" has the endpoint
answer a fifth of every call's requests (rounded down) as UnprocessedItems: ddbx treats
that as DynamoDB asking it to slow down (backoff, and a lower rate), so its wall time is
the backoff's, and the point of it is that every item still lands exactly once.
{table_md}
{ratio_md}
**The physical limit** (canned endpoint, MB of items as DynamoDB sizes them, per CPU second):

{limit_md}
{limit_line}

Memory over one more ddbx export (gzip) of each ~200-byte emulator table, sampled every
50 ms from `/proc` (MB resident): how soon the peak is reached.

{memory_md}
The same for one more export (gzip) and import of each ~200-byte canned table:
{canned_memory_md}
Rate accuracy: a table reporting 200 provisioned RCU ({rate_items:,} items from the canned
endpoint), exported with `--read-ratio 0.5` (target 100 RCU/s, so 1,000 units per 10-second
window). Worst deviation over the full windows after the first: {worst:.1f} %.

{rate_md}
Fleets (canned endpoint): an app of that many tables of 10 items each (ListTables paged 100
names at a time, as DynamoDB pages it), exported in one run (`--tables FLEET_`, defaults
otherwise), medians of {args.runs} runs. Then a local base holding
{max(fleets) if fleets else 0:,} runs of one app (copies of one real 1-table run, an hour
apart), listed and pruned to its newest tenth (a dry run, then the prune), and
{args.s3_runs:,} such runs in moto's S3, listed and pruned to their newest tenth (once).

{fleet_md}"""
print(report)
if args.out:
    old = open(args.out).read() if os.path.exists(args.out) else ""
    marker = "\n## Notes\n"
    notes = old[old.index(marker):] if marker in old else ""
    with open(args.out, "w") as f:
        f.write(report + notes)
shutil.rmtree(work, ignore_errors=True)
shutil.rmtree(fleet_work, ignore_errors=True)

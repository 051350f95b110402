#!/usr/bin/env python3
"""A real single-node Slurm (Debian's slurmctld, slurmd, munge): submits the job array and merge job
that `eirnn sweep --slurm-submit` writes for a 4-shard CPU sweep, waits for both, and compares the
merged file with the same sweep run unsharded (every dataset and attribute but train_seconds, and
the group order). One shard's cells are trained beforehand, as by a task preempted after them: its
array task must resume from them.

Everything lives in one temporary folder: a munge key and socket of its own, a slurm.conf on free
ports (SLURM_CONF), state and logs. The daemons run in the foreground as children of this script
(they die with it: PR_SET_PDEATHSIG) and are stopped by their process ids at the end, also when
the test fails. Exit status 77 (a skip for ctest) with the reason when the daemons cannot start:
not root, the packages missing (tools/bootstrap installs them), a daemon that does not come up.

    tests/test_slurm.py --eirnn build/eirnn
"""
import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld",
           "slurmd": "/usr/sbin/slurmd"}
CLIENTS = ["sbatch", "squeue", "sinfo", "scontrol", "scancel"]

SWEEP = """
description = "4 shards on a single-node Slurm"
networks_per_cell = 2
seed = 5
backend = "cpu"
threads = 1
output = "results.h5"
[train]
trials = 160
test_trials = 32
batch = 32
epochs = 2
lr = 0.002
[task]
first_in = 2
stim_dur = 3
mem_gap = 2
var_delay = 3
out_gap = 6
[axes]
units = [8, 16]
task = ["and", "xor"]
dale = ["project", "none"]
[slurm]
shards = 4
min_minutes = 5
"""


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def die_with_parent():
    # The daemon gets SIGTERM when this script ends, whatever ends it (even SIGKILL).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Cluster:
    def __init__(self, root):
        self.root = root
        self.procs = []  # (name, Popen)
        self.env = dict(os.environ, SLURM_CONF=os.path.join(root, "slurm.conf"))

    def start(self, name, argv):
        log = open(os.path.join(self.root, name + ".out"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             preexec_fn=die_with_parent)
        self.procs.append((name, p))
        return p

    def stop(self):
        # Jobs first (their steps are slurmd's children), then the daemons, newest first, by pid.
        try:
            subprocess.run(["scancel", "--user=root"], env=self.env, timeout=10,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            pass
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def run(self, argv, **kw):
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, **kw)


def wait_for(what, check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def start_cluster(c):
    root = c.root
    key = os.path.join(root, "munge.key")
    with open(key, "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(key, 0o600)
    sock = os.path.join(root, "munge.sock")
    munged = c.start("munged", [DAEMONS["munged"], "--foreground", "--force",
                                f"--socket={sock}", f"--key-file={key}",
                                f"--log-file={root}/munged.log", f"--pid-file={root}/munged.pid",
                                f"--seed-file={root}/munged.seed"])
    if not wait_for("munged", lambda: os.path.exists(sock) or munged.poll() is not None, 10) \
            or munged.poll() is not None:
        skip(f"munged did not start: {tail(os.path.join(root, 'munged.out'))}")

    host = socket.gethostname().split(".")[0]
    for d in ("state", "spool"):
        os.makedirs(os.path.join(root, d))
    conf = f"""ClusterName=eirnntest
SlurmctldHost={host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=defer_batch
MinJobAge=600
NodeName={host} CPUs={os.cpu_count()} RealMemory=1000 State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    with open(c.env["SLURM_CONF"], "w") as f:
        f.write(conf)
    ctld = c.start("slurmctld", [DAEMONS["slurmctld"], "-D", "-f", c.env["SLURM_CONF"]])
    slurmd = c.start("slurmd", [DAEMONS["slurmd"], "-D", "-f", c.env["SLURM_CONF"]])

    def idle():
        if ctld.poll() is not None or slurmd.poll() is not None:
            return True
        r = c.run(["sinfo", "-h", "-o", "%t"], timeout=10)
        return r.returncode == 0 and r.stdout.strip() == "idle"

    if not wait_for("slurm", idle, 30) or ctld.poll() is not None or slurmd.poll() is not None:
        skip("the Slurm daemons did not start: slurmctld: "
             f"{tail(os.path.join(root, 'slurmctld.out'), 3)}; slurmd: "
             f"{tail(os.path.join(root, 'slurmd.out'), 3)}")


def compare(a_path, b_path):
    import h5py
    import numpy as np

    def everything(path):
        out = {}
        with h5py.File(path, "r") as f:
            def attrs(name, obj):
                for k, v in obj.attrs.items():
                    if k != "train_seconds":
                        out[f"{name}@{k}"] = v

            attrs("/", f)

            def visit(name, obj):
                attrs(name, obj)
                if isinstance(obj, h5py.Dataset):
                    arr = obj[()]
                    out[name] = (str(arr.dtype), np.asarray(arr).tobytes())
            f.visititems(visit)
            order = list(f["groups"].keys())
        return out, order

    a, a_order = everything(a_path)
    b, b_order = everything(b_path)
    problems = [f"{k}: only in {a_path}" for k in a if k not in b]
    problems += [f"{k}: only in {b_path}" for k in b if k not in a]
    for k in a:
        if k in b:
            x, y = a[k], b[k]
            same = (x == y) if isinstance(x, tuple) else np.array_equal(np.asarray(x),
                                                                          np.asarray(y))
            if not same:
                problems.append(f"{k}: differs")
    if a_order != b_order:
        problems.append(f"group order {a_order} != {b_order}")
    datasets = sum(1 for k in a if "@" not in k)
    return problems, datasets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eirnn", required=True)
    args = ap.parse_args()
    eirnn = os.path.abspath(args.eirnn)
    t0 = time.monotonic()

    if os.geteuid() != 0:
        skip("a single-node Slurm needs root (slurmd runs jobs as their users)")
    missing = [p for p in DAEMONS.values() if not os.access(p, os.X_OK)]
    missing += [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        skip(f"Slurm packages not installed ({', '.join(missing)}); tools/bootstrap installs "
             "slurmctld slurmd slurm-client munge")

    root = tempfile.mkdtemp(prefix="eirnn_slurm_")
    c = Cluster(root)

    def on_signal(sig, _frame):
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ok = False
    try:
        start_cluster(c)
        print(f"single-node Slurm up in {time.monotonic() - t0:.1f} s")
        work = os.path.join(root, "work")
        os.makedirs(work)
        cfg = os.path.join(work, "sweep.toml")
        with open(cfg, "w") as f:
            f.write(SWEEP)

        # Shard 2's cells finished before (as by a task that was preempted after them): its array
        # task must resume, not retrain them.
        r = subprocess.run([eirnn, "sweep", "sweep.toml", "--shard", "2/4", "--quiet"], cwd=work,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"local shard 2/4 failed: {r.stderr.strip()}"

        r = c.run([eirnn, "sweep", "sweep.toml", "--slurm-submit", "--rate", "1"], cwd=work,
                  timeout=60)
        print(r.stdout.strip())
        assert r.returncode == 0, f"--slurm-submit failed: {r.stderr.strip()}"
        words = r.stdout.split()
        array_id = words[words.index("array") + 1]
        merge_id = words[words.index("merge") + 2]
        assert array_id.isdigit() and merge_id.isdigit(), r.stdout

        def finished():
            q = c.run(["squeue", "-h", "-j", f"{array_id},{merge_id}"], timeout=10)
            return q.returncode == 0 and q.stdout.strip() == ""

        assert wait_for("jobs", finished, 90), "the jobs did not finish within 90 s: " + \
            c.run(["squeue"], timeout=10).stdout
        state = c.run(["scontrol", "show", "job", merge_id], timeout=10).stdout
        logs = os.path.join(work, "results.h5.slurm")
        assert "JobState=COMPLETED" in state, \
            f"merge job: {state.strip()} | logs: " + \
            " ".join(f"{n}: {tail(os.path.join(logs, n), 3)}" for n in sorted(os.listdir(logs)))
        task_logs = [n for n in os.listdir(logs) if n.endswith(".out") and "merge" not in n]
        assert len(task_logs) == 4, f"expected 4 array task logs, found {sorted(os.listdir(logs))}"
        resumed = [n for n in task_logs if n.endswith("_2.out")]
        assert resumed, f"no log of array task 2 in {task_logs}"
        with open(os.path.join(logs, resumed[0])) as f:
            text = f.read()
        assert "shard 2/4: 2 groups (2 from an earlier run)" in text, f"task 2 did not resume: {text}"
        merged = os.path.join(work, "results.h5")
        assert os.path.exists(merged), "no merged results file"
        assert not os.path.exists(merged + ".parts"), "the parts folder is still there"
        print(f"array {array_id} and merge {merge_id} done at {time.monotonic() - t0:.1f} s")
        r = subprocess.run([eirnn, "sweep", "sweep.toml", "--status"], cwd=work,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "complete:" in r.stdout, f"--status: {r.stdout} {r.stderr}"

        r = subprocess.run([eirnn, "sweep", "sweep.toml", "--out", "whole.h5", "--quiet"],
                           cwd=work, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"unsharded run failed: {r.stderr.strip()}"
        problems, datasets = compare(os.path.join(work, "whole.h5"), merged)
        assert not problems, "merged file differs from the unsharded run: " + "; ".join(
            problems[:10])
        assert datasets > 8 * 20, f"only {datasets} datasets compared"
        print(f"merged file identical to the unsharded run ({datasets} datasets); "
              f"total {time.monotonic() - t0:.1f} s")
        ok = True
    except AssertionError as e:
        print(f"FAIL: {e}")
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

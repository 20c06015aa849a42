"""Notebook memory benchmark for ./lab bench memory: does the kernel free arrays nobody closes? JSON lines.

A fresh kernel is started through Jupyter's own client, like a notebook front end does, and loads tinylang-4l.
Then, in cells of that one kernel:
  - closed: N iterations of runWithCache(all hooks) + forward, each result closed by hand (try-with-resources);
  - unclosed: the same N iterations with nothing closed, as a TransformerLens user writes them;
  - cell_scope: the other candidate design, a per-cell scope that frees a cell's arrays only when the cell ends,
    measured as a loop inside one NDScope in a second kernel started without memory management
    (JLENS_MEMORY=manual; fewer iterations: it holds everything until the end).
The two timed variants alternate in blocks so that load on a shared machine hits both alike. Resident memory is
the kernel process's VmRSS, read from /proc. Metrics:
  - rss_growth_unclosed: resident memory after the unclosed cells (kernel idle, 2 s later) minus before them (goal
    <= 100 MB); rss_peak_unclosed: the largest growth seen while they ran (no goal; bounded by the collection
    threshold plus one iteration's arrays);
  - time_ratio: time per iteration unclosed / closed (goal <= 1.1);
  - cell_scope_growth_per_iteration: what a per-cell scope would hold per iteration until the cell ends.
"""
import argparse
import json
import os
import sys
import time

KERNEL = os.environ.get("JLENS_KERNEL_NAME", "jlens")

SETUP = """
HookedTransformer model = Zoo.load("tinylang-4l");
Batch batch = Tasks.tinyLang().batch(Split.TEST, 0, %(batch)d).batch();
for (int i = 0; i < 5; i++) {
    try (ActivationCache c = model.runWithCache(batch, NameFilter.all()); NDArray l = model.forward(batch)) { }
}
System.out.println(batch);
"""

CLOSED = """
long t0 = System.nanoTime();
for (int i = 0; i < %(n)d; i++) {
    try (ActivationCache c = model.runWithCache(batch, NameFilter.all()); NDArray l = model.forward(batch)) {
        c.size();
    }
}
System.out.println("ns " + (System.nanoTime() - t0));
"""

UNCLOSED = """
long t0 = System.nanoTime();
for (int i = 0; i < %(n)d; i++) {
    var c = model.runWithCache(batch, NameFilter.all());
    var l = model.forward(batch);
    c.size();
}
System.out.println("ns " + (System.nanoTime() - t0));
"""

CELL_SCOPE = """
long t0 = System.nanoTime();
try (NDScope scope = new NDScope()) {
    for (int i = 0; i < %(n)d; i++) {
        var c = model.runWithCache(batch, NameFilter.all());
        var l = model.forward(batch);
        c.size();
        if (i == %(n)d - 1) System.out.println("rss_in_cell_kb " + rssKb());
    }
}
System.out.println("ns " + (System.nanoTime() - t0));
"""

RSS_HELPER = """
long rssKb() throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc/self/status")))
        if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("\\\\D+", ""));
    return -1;
}
"""


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


class Kernel:
    def __init__(self, env=None):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=KERNEL)
        self.km.start_kernel(env=dict(os.environ, **(env or {})))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=180)
        self.pid = self.km.provisioner.process.pid

    def run(self, code, sample=None):
        """Runs a cell; returns its stdout. sample(): called every 0.2 s while the cell runs."""
        msg_id = self.kc.execute(code)
        out = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except Exception:
                if sample:
                    sample()
                continue
            if sample:
                sample()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("cell failed: %s\n%s" % (msg["content"]["evalue"], "\n".join(msg["content"]["traceback"])))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def seconds(out):
    for line in out.splitlines():
        if line.startswith("ns "):
            return int(line[3:]) / 1e9
    raise RuntimeError("no timing in %r" % out)


def emit(metric, value, unit, goal=None, note=None, **extra):
    line = {"bench": "memory", "metric": metric, "value": round(value, 4), "unit": unit}
    if goal is not None:
        line["goal"] = goal
        line["ok"] = value <= goal
    if note:
        line["note"] = note
    line.update(extra)
    print(json.dumps(line), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=1000, help="iterations of each timed variant (default 1000)")
    p.add_argument("--blocks", type=int, default=4, help="alternating blocks the iterations are split into")
    p.add_argument("--batch", type=int, default=8, help="sequences of 64 tokens per call (default 8)")
    p.add_argument("--cell-scope-iterations", type=int, default=40)
    a = p.parse_args()
    if a.iterations % a.blocks:
        p.error("--iterations must be a multiple of --blocks")
    k = Kernel()
    try:
        k.run(RSS_HELPER)
        shape = k.run(SETUP % {"batch": a.batch}).strip()
        per_block = a.iterations // a.blocks
        k.run(CLOSED % {"n": per_block})
        time.sleep(2)
        closed_s = unclosed_s = 0.0
        before = rss_kb(k.pid)
        peak = [before]

        def sample():
            peak[0] = max(peak[0], rss_kb(k.pid))

        for _ in range(a.blocks):
            closed_s += seconds(k.run(CLOSED % {"n": per_block}, sample))
            unclosed_s += seconds(k.run(UNCLOSED % {"n": per_block}, sample))
        time.sleep(2)
        after = rss_kb(k.pid)
        load = os.getloadavg()[0]
        note = "%d iterations of runWithCache(all hooks) + forward on tinylang-4l, %s; load %.2f" % (
            a.iterations, shape, load)
        emit("rss_growth_unclosed", (after - before) / 1024, "MB", goal=100, note=note,
             rss_before_mb=round(before / 1024, 1), rss_after_mb=round(after / 1024, 1))
        emit("rss_peak_unclosed", (peak[0] - before) / 1024, "MB", note="largest growth seen while the cells ran")
        emit("time_per_iteration_closed", closed_s / a.iterations * 1e3, "ms")
        emit("time_per_iteration_unclosed", unclosed_s / a.iterations * 1e3, "ms")
        emit("time_ratio", unclosed_s / closed_s, "x", goal=1.1, note="unclosed / closed, blocks alternated")
    finally:
        k.close()
    k = Kernel({"JLENS_MEMORY": "manual"})
    try:
        k.run(RSS_HELPER)
        k.run(SETUP % {"batch": a.batch})
        n = a.cell_scope_iterations
        start = rss_kb(k.pid)
        out = k.run(CELL_SCOPE % {"n": n})
        in_cell = int([l for l in out.splitlines() if l.startswith("rss_in_cell_kb ")][0].split()[1])
        emit("cell_scope_growth_per_iteration", (in_cell - start) / 1024 / n, "MB",
             note="a per-cell scope frees only when the cell ends: %d iterations held %.0f MB" % (
                 n, (in_cell - start) / 1024))
    finally:
        k.close()


if __name__ == "__main__":
    sys.exit(main())

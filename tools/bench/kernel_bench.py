"""Kernel benchmark for ./lab bench kernel: cold start and notebook execute time, as JSON lines.

Each run starts a fresh kernel through Jupyter's own client (jupyter_client / nbclient), like a notebook
front end does:
  - cold_start_to_ready: launching the kernel process until it answers kernel_info
  - cold_start_to_first_result: launching until the result of "1 + 1" arrives (sent as soon as it is ready)
  - first_cell: that first cell alone (request to result), JShell still cold
  - notebook_execute: executing notebooks/00-welcome.ipynb with nbclient, kernel start included
Values are medians over --runs runs. baseline is the goal for this machine (ratio <= 1 meets it), or null
where there is no goal. The 1-minute load average is reported too: on a shared machine it explains a lot.
"""
import argparse
import json
import os
import statistics
import sys
import time

KERNEL = os.environ.get("JLENS_KERNEL_NAME", "jlens")
GOALS = {"cold_start_to_ready": 2.0, "cold_start_to_first_result": 2.0, "first_cell": 1.5}


def cold_start():
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=KERNEL)
    start = time.monotonic()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        ready = time.monotonic() - start
        sent = time.monotonic()
        msg_id = kc.execute("1 + 1")
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                value = msg["content"]["data"]["text/plain"]
                if value != "2":
                    raise RuntimeError("1 + 1 gave %r" % value)
                done = time.monotonic()
                break
            if msg["msg_type"] == "error":
                raise RuntimeError("first cell failed: %s" % msg["content"])
        return {"cold_start_to_ready": ready, "cold_start_to_first_result": done - start,
                "first_cell": done - sent}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def notebook_execute(path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, startup_timeout=120,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    start = time.monotonic()
    client.execute()
    return time.monotonic() - start


def emit(metric, values, unit="s"):
    value = statistics.median(values)
    goal = GOALS.get(metric)
    print(json.dumps({"bench": "kernel", "metric": metric, "value": round(value, 3), "unit": unit,
                      "baseline": goal, "ratio": round(value / goal, 3) if goal else None,
                      "runs": [round(v, 3) for v in values]}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--notebook", default="notebooks/00-welcome.ipynb")
    args = parser.parse_args()

    loads = [os.getloadavg()[0]]
    starts = []
    for _ in range(args.runs):
        starts.append(cold_start())
        loads.append(os.getloadavg()[0])
    for metric in ("cold_start_to_ready", "cold_start_to_first_result", "first_cell"):
        emit(metric, [s[metric] for s in starts])
    if os.path.exists(args.notebook):
        runs = []
        for _ in range(args.runs):
            runs.append(notebook_execute(args.notebook))
            loads.append(os.getloadavg()[0])
        emit("notebook_execute:" + os.path.basename(args.notebook), runs)
    else:
        print("kernel_bench: %s not found, skipping notebook_execute" % args.notebook, file=sys.stderr)
    emit("load_average_1m", loads, unit="load")
    return 0


if __name__ == "__main__":
    sys.exit(main())

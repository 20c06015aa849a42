"""Kernel output benchmark for ./lab bench kernel-output: printing many lines in a cell, as JSON lines.

One kernel is started through Jupyter's own client (jupyter_client), warmed up with a trivial cell, then each run
executes a cell printing --lines lines of 100 characters (a 6-digit number, a space, 93 x's) and reads every iopub
message until the kernel is idle again, as a front end does. Per run: seconds (request to idle and execute_reply),
the stream messages received, and whether the text arrived complete and in order. A last cell alternates stdout and
stderr (--interleaved lines each) and checks that they arrive in the order written. goal: 10 s for 200,000 lines
(IPython takes seconds); ok: every run within the goal and every check passed. The 1-minute load average is
reported too: on a shared machine it explains a lot.
"""
import argparse
import json
import os
import statistics
import sys
import time

KERNEL = os.environ.get("JLENS_KERNEL_NAME", "jlens")
GOAL_S = 10.0


def run_cell(kc, code, timeout):
    """Executes code; returns (seconds, [(stream name, text)], reply status)."""
    start = time.monotonic()
    msg_id = kc.execute(code, allow_stdin=False)
    streams = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            streams.append((msg["content"]["name"], msg["content"]["text"]))
        elif kind == "error":
            raise RuntimeError("cell failed: %s: %s" % (msg["content"]["ename"], msg["content"]["evalue"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return time.monotonic() - start, streams, reply["content"]["status"]


def print_cell(lines):
    return ('String pad = " " + "x".repeat(93);\n'
            "for (int i = 0; i < %d; i++) {\n"
            "    System.out.println(String.valueOf(1_000_000 + i).substring(1) + pad);\n"
            "}" % lines)


def expected_text(lines):
    pad = " " + "x" * 93
    return "".join("%06d%s\n" % (i, pad) for i in range(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interleaved", type=int, default=2_000)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for any one message")
    args = parser.parse_args()

    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    loads = [os.getloadavg()[0]]
    try:
        kc.wait_for_ready(timeout=120)
        run_cell(kc, "1 + 1", args.timeout)  # JShell warm-up
        expected = expected_text(args.lines)
        times, messages, complete = [], [], True
        for _ in range(args.runs):
            seconds, streams, status = run_cell(kc, print_cell(args.lines), args.timeout)
            text = "".join(t for name, t in streams if name == "stdout")
            ok = status == "ok" and text == expected and all(name == "stdout" for name, _ in streams)
            complete = complete and ok
            times.append(seconds)
            messages.append(len(streams))
            loads.append(os.getloadavg()[0])
        value = statistics.median(times)
        print(json.dumps({"bench": "kernel-output", "metric": "print_lines", "lines": args.lines,
                          "chars_per_line": 100, "seconds": round(value, 3), "value": round(value, 3), "unit": "s",
                          "runs": [round(t, 3) for t in times], "messages": messages, "complete": complete,
                          "goal": GOAL_S, "ok": complete and max(times) <= GOAL_S}), flush=True)

        code = ("for (int i = 0; i < %d; i++) {\n    System.out.println(\"o\" + i);\n"
                "    System.err.println(\"e\" + i);\n}" % args.interleaved)
        seconds, streams, status = run_cell(kc, code, args.timeout)
        got = [name + ":" + line for name, text in streams for line in text.splitlines()]
        want = [s for i in range(args.interleaved) for s in ("stdout:o%d" % i, "stderr:e%d" % i)]
        in_order = status == "ok" and got == want
        print(json.dumps({"bench": "kernel-output", "metric": "interleaved_stdout_stderr",
                          "lines": 2 * args.interleaved, "seconds": round(seconds, 3), "value": round(seconds, 3),
                          "unit": "s", "messages": len(streams), "in_order": in_order, "ok": in_order}),
              flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    print(json.dumps({"bench": "kernel-output", "metric": "load_average_1m",
                      "value": round(statistics.median(loads), 3), "unit": "load"}), flush=True)
    return 0 if complete and in_order else 1


if __name__ == "__main__":
    sys.exit(main())

"""Drives a Jupyter kernel through jupyter_client, the way notebook front ends do.

usage: python3 kernel_driver.py KERNEL_NAME < steps.json > results.json

The kernel spec is found through JUPYTER_PATH. steps.json is a list of steps; the output has the time from starting
the kernel to its first kernel_info reply ("ready_s") and one result per step, in order. A step is one of:

  {"code": ..., "interrupt_after": seconds (optional), "timeout": seconds (optional)}
      execute a cell; the result has the reply status, every output message and the wall time
  {"code": ..., "expect_death": true, "timeout": seconds (optional)}
      execute a cell that kills the kernel; the result says whether the kernel process died and its exit code
  {"restart": true, "now": true|false}
      restart the kernel with the same connection file (now: kill it; otherwise a shutdown request first)
  {"raw": "bad_signature" | "missing_signature" | "truncated", "code": ...}
      send a hand-made execute_request straight to the shell port, as any local process could, then wait a moment
"""
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid

import zmq
from jupyter_client.manager import KernelManager


def run_step(km, kc, step):
    code = step["code"]
    timeout = step.get("timeout", 120)
    start = time.monotonic()
    msg_id = kc.execute(code, allow_stdin=False)
    timer = None
    if step.get("interrupt_after") is not None:
        timer = threading.Timer(step["interrupt_after"], km.interrupt_kernel)
        timer.start()
    outputs = []
    first_output_s = None
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "status":
            if content["execution_state"] == "idle":
                break
            continue
        if kind == "execute_input":
            continue
        if first_output_s is None:
            first_output_s = time.monotonic() - start
        out = {"type": kind}
        if kind == "stream":
            out.update(name=content["name"], text=content["text"])
        elif kind in ("execute_result", "display_data", "update_display_data"):
            out.update(data=content["data"], display_id=content.get("transient", {}).get("display_id"))
        elif kind == "error":
            out.update(ename=content["ename"], evalue=content["evalue"], traceback=content["traceback"])
        outputs.append(out)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    if timer is not None:
        timer.cancel()
    content = reply["content"]
    return {
        "status": content["status"],
        "ename": content.get("ename"),
        "evalue": content.get("evalue"),
        "traceback": content.get("traceback"),
        "outputs": outputs,
        "elapsed_s": time.monotonic() - start,
        "first_output_s": first_output_s,
    }


def run_fatal_step(km, kc, step):
    """Executes a cell that should kill the kernel; waits for the process to end."""
    start = time.monotonic()
    kc.execute(step["code"], allow_stdin=False)
    deadline = start + step.get("timeout", 120)
    while km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    died = not km.is_alive()
    process = getattr(getattr(km, "provisioner", None), "process", None)
    return {
        "died": died,
        "exit_code": process.returncode if process is not None else None,
        "elapsed_s": time.monotonic() - start,
    }


def restart(km, kc, step):
    start = time.monotonic()
    km.restart_kernel(now=step.get("now", True))
    # restart_kernel waits up to shutdown_wait_time (5 s) for the old kernel to exit, then kills it.
    restart_s = time.monotonic() - start
    kc.wait_for_ready(timeout=120)
    return {"restarted": True, "restart_s": restart_s, "elapsed_s": time.monotonic() - start}


def send_raw(km, step):
    """Sends an execute_request to the shell port that the kernel must drop, from a socket of our own."""
    kind = step["raw"]
    session = str(uuid.uuid4())
    header = json.dumps({"msg_id": str(uuid.uuid4()), "session": session, "username": "intruder",
                         "date": "2024-01-01T00:00:00.000000Z", "msg_type": "execute_request",
                         "version": "5.3"}).encode()
    content = json.dumps({"code": step["code"], "silent": False, "store_history": True, "user_expressions": {},
                          "allow_stdin": False, "stop_on_error": False}).encode()
    parts = [header, b"{}", b"{}", content]
    if kind == "bad_signature":
        signature = hmac.new(b"not-the-kernel-key", digestmod=hashlib.sha256)
        for p in parts:
            signature.update(p)
        frames = [b"<IDS|MSG>", signature.hexdigest().encode()] + parts
    elif kind == "missing_signature":
        frames = [b"<IDS|MSG>", b""] + parts
    elif kind == "truncated":
        frames = [b"<IDS|MSG>", b"deadbeef", header]
    else:
        raise ValueError("unknown raw message kind: " + kind)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 1000
    sock.connect("%s://%s:%d" % (km.transport, km.ip, km.shell_port))
    sock.send_multipart(frames)
    reply = sock.poll(1500)  # a dropped message gets no reply
    sock.close()
    return {"sent": kind, "answered": bool(reply)}


def main():
    kernel_name = sys.argv[1]
    steps = json.load(sys.stdin)
    # The kernel inherits stdout, where a dying JVM writes its crash banner: keep the report's stream to ourselves.
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    km = KernelManager(kernel_name=kernel_name)
    start = time.monotonic()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        ready_s = time.monotonic() - start
        results = []
        for step in steps:
            if step.get("restart"):
                results.append(restart(km, kc, step))
            elif step.get("raw"):
                results.append(send_raw(km, step))
            elif step.get("expect_death"):
                results.append(run_fatal_step(km, kc, step))
            else:
                results.append(run_step(km, kc, step))
        alive = km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=not km.is_alive())
    json.dump({"ready_s": ready_s, "results": results, "alive_at_end": alive}, report)
    report.close()


if __name__ == "__main__":
    main()

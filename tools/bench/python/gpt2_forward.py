"""GPT-2 forward pass in plain PyTorch eager (no hooks), timed: the Python baseline of `lab bench model`.

Same math as Hugging Face's GPT2LMHeadModel (pre-LayerNorm blocks, fused QKV, gelu_new, tied unembedding), written
with nn.Linear / nn.LayerNorm; random weights of the requested shape; forward under torch.inference_mode().

Standalone: times every (batch, torch thread count), interleaving the thread settings so that load from other
processes falls on all of them alike, and prints one JSON object per (batch, threads) on stdout:
{"batch": 1, "threads": 1, "median_ms": ..., "min_ms": ..., "runs": N, "torch": "..."}.

--serve: prints {"ready": true, ...} once the model is built, then for every line "run BATCH THREADS" read from stdin
times one forward pass and prints {"ms": ..., "cpu_ms": ...} (wall time, and CPU time of the process, all threads);
"profile BATCH THREADS" runs one under torch's profiler and prints {"matmul_ms": ..., "other_ms": ...} (self CPU time
of the matrix products, and of every other op);
"quit" or end of input exits. The Java bench drives it so that its
runs alternate with the JVM's, side by side in time.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h, d_mlp, eps):
        super().__init__()
        self.h, self.eps = h, eps
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.c_fc = nn.Linear(d, d_mlp)
        self.mlp_proj = nn.Linear(d_mlp, d)

    def forward(self, x, mask):
        b, p, d = x.shape
        dh = d // self.h
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q = q.view(b, p, self.h, dh).transpose(1, 2)                    # [b, h, q, dh]
        k = k.view(b, p, self.h, dh).transpose(1, 2)
        v = v.view(b, p, self.h, dh).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)  # [b, h, q, k]
        scores = scores + mask
        z = torch.matmul(scores.softmax(dim=-1), v)                    # [b, h, q, dh]
        z = z.transpose(1, 2).contiguous().view(b, p, d)
        x = x + self.c_proj(z)
        hid = self.c_fc(self.ln_2(x))
        # gelu_new, as Hugging Face's NewGELUActivation writes it
        hid = 0.5 * hid * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (hid + 0.044715 * torch.pow(hid, 3.0))))
        return x + self.mlp_proj(hid)


class Gpt2(nn.Module):
    def __init__(self, d, layers, h, d_mlp, vocab, ctx, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([Block(d, h, d_mlp, eps) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=eps)
        for mod in self.modules():   # GPT-2's initialisation: normal(0.02) weights, zero biases, unit LayerNorms
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                nn.init.normal_(mod.weight, std=0.02)
            if isinstance(mod, nn.Linear):
                nn.init.zeros_(mod.bias)

    def forward(self, ids):
        b, p = ids.shape
        pos = torch.arange(p, dtype=torch.long).unsqueeze(0)
        mask = torch.full((p, p), float("-inf")).triu(1)
        x = self.wte(ids) + self.wpe(pos)
        for blk in self.h:
            x = blk(x, mask)
        return F.linear(self.ln_f(x), self.wte.weight)                  # tied unembedding


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--d-mlp", type=int, default=3072)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", default="1")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = Gpt2(a.d_model, a.layers, a.heads, a.d_mlp, a.vocab, a.ctx).eval()
    if a.serve:
        return serve(model, a)
    threads = [int(t) for t in a.threads.split(",")]
    for batch in [int(b) for b in a.batches.split(",")]:
        ids = torch.randint(0, a.vocab, (batch, a.seq))
        times = {t: [] for t in threads}
        with torch.inference_mode():
            for t in threads:
                torch.set_num_threads(t)
                for _ in range(a.warmup):
                    model(ids)
            for _ in range(a.runs):
                for t in threads:
                    torch.set_num_threads(t)
                    start = time.perf_counter()
                    out = model(ids)
                    times[t].append((time.perf_counter() - start) * 1e3)
                    del out
        for t in threads:
            print(json.dumps({"batch": batch, "threads": t, "median_ms": statistics.median(times[t]),
                              "min_ms": min(times[t]), "runs": a.runs, "torch": torch.__version__,
                              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}), flush=True)


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear"}


def profile(model, ids):
    """One forward under torch's profiler: the self CPU time of the matrix products and of everything else (ms)."""
    with torch.inference_mode(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(ids)
    matmul = other = 0.0
    for e in prof.key_averages():
        if e.key in MATMUL_OPS:
            matmul += e.self_cpu_time_total
        else:
            other += e.self_cpu_time_total
    return {"matmul_ms": matmul / 1e3, "other_ms": other / 1e3}


def serve(model, a):
    inputs = {}
    print(json.dumps({"ready": True, "torch": torch.__version__,
                      "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        if parts[0] not in ("run", "profile") or len(parts) != 3:
            print(json.dumps({"error": "expected 'run BATCH THREADS', 'profile BATCH THREADS' or 'quit', got "
                              + line.strip()}), flush=True)
            continue
        batch, threads = int(parts[1]), int(parts[2])
        if batch not in inputs:
            inputs[batch] = torch.randint(0, a.vocab, (batch, a.seq))
        torch.set_num_threads(threads)
        if parts[0] == "profile":
            print(json.dumps(profile(model, inputs[batch])), flush=True)
            continue
        with torch.inference_mode():
            cpu = time.process_time()
            start = time.perf_counter()
            out = model(inputs[batch])
            ms = (time.perf_counter() - start) * 1e3
            cpu_ms = (time.process_time() - cpu) * 1e3
        del out
        print(json.dumps({"ms": ms, "cpu_ms": cpu_ms}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

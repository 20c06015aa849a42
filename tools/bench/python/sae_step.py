#!/usr/bin/env python3
"""Baseline for SaeBench: one TopK SAE training step in plain PyTorch eager mode, written as SAELens-style code
does it (dense pre-activations, topk, scatter into dense latents, dense decoder, MSE summed over d_in and averaged
over the batch, backward, AdamW), and the same step with AuxK (Gao et al. 2024) on dead latents: the aux_k largest
pre-activations among dead latents (every other latent here) reconstruct the detached error, normalised by its
variance, weighted 1/32.

Protocol (so SaeBench can interleave Java and Python runs on a shared machine): after start-up it prints one JSON
line {"ready": true, "torch": VERSION, "threads": N, "openblas_threads": ...}; then it reads commands on stdin and
answers each with one JSON line on stdout:
    step N     -> {"ms": [wall milliseconds of each of N steps], "loss": last loss}
    auxstep N  -> the same for the step with AuxK (needs --aux-k > 0)
    quit       -> exits
Usage: sae_step.py --d-in 512 --d-sae 8192 --k 32 --batch 4096 [--aux-k 64] [--threads 1] [--seed 0]
"""
import argparse
import json
import os
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-in", type=int, required=True)
    ap.add_argument("--d-sae", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--aux-k", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(a.seed)
    w_dec = torch.randn(a.d_sae, a.d_in, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    params = {
        "W_enc": torch.nn.Parameter(w_dec.t().clone()),
        "b_enc": torch.nn.Parameter(torch.zeros(a.d_sae)),
        "W_dec": torch.nn.Parameter(w_dec.clone()),
        "b_dec": torch.nn.Parameter(torch.zeros(a.d_in)),
    }
    opt = torch.optim.AdamW(params.values(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    x = torch.randn(a.batch, a.d_in, generator=g)

    dead = torch.arange(a.d_sae) % 2 == 0

    def step(aux=False):
        pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
        vals, idx = pre.topk(a.k, dim=-1)
        acts = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
        recon = acts @ params["W_dec"] + params["b_dec"]
        loss = (x - recon).pow(2).sum(-1).mean()
        if aux:
            masked = torch.where(dead, pre, torch.full_like(pre, float("-inf")))
            avals, aidx = masked.topk(min(a.aux_k, int(dead.sum())), dim=-1)
            aux_acts = torch.zeros_like(pre).scatter(-1, aidx, torch.relu(avals))
            e = (x - recon).detach()
            e_hat = aux_acts @ params["W_dec"]
            denom = (e - e.mean(0, keepdim=True)).pow(2).sum(-1).mean().clamp_min(1e-8)
            loss = loss + (e_hat - e).pow(2).sum(-1).mean() / denom / 32
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss.item()

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        if cmd[0] in ("step", "auxstep"):
            if cmd[0] == "auxstep" and a.aux_k <= 0:
                print(json.dumps({"error": "auxstep needs --aux-k > 0"}), flush=True)
                continue
            ms, loss = [], float("nan")
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                loss = step(cmd[0] == "auxstep")
                ms.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"ms": ms, "loss": loss}), flush=True)
        else:
            print(json.dumps({"error": "unknown command " + cmd[0]}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Baseline for TrainBench: the same Llama-family model and training step as dev.jlens.train.Trainer, in plain
PyTorch eager mode.

It loads the initial weights TrainBench saved (Hugging Face layout, model.safetensors in F32), fuses q/k/v and
gate/up as the Java model does, reads the token batches TrainBench wrote, and trains with the same step: next-token
cross-entropy, backward, clip_grad_norm_, AdamW (decay on the same tensors, the same learning rate per step).

Protocol (so TrainBench can interleave Java and Python rounds on a shared machine): it reads commands on stdin and
answers each with one JSON line on stdout:
    run N      -> {"seconds": wall time of N steps, "losses": [...], "step": steps done}
    opt N      -> {"seconds": wall time of N optimizer.step() calls}
    quit       -> exits
Usage: train_step.py --spec spec.json
"""
import argparse
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F


def load_safetensors(path):
    """F32 tensors of a .safetensors file, without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: expected F32, got {info['dtype']}")
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + start:base + end]), dtype=torch.float32)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def rope_tables(n_ctx, d_head, theta):
    """cos and sign-folded sin [n_ctx, d_head], computed as the Java model does (float32 angles, double cos/sin)."""
    half = d_head // 2
    inv = torch.tensor([1.0 / theta ** ((2.0 * i) / d_head) for i in range(half)], dtype=torch.float64).float()
    ang = torch.arange(n_ctx, dtype=torch.float32)[:, None] * inv.repeat(2)[None, :]
    cos = torch.cos(ang.double()).float()
    sin = torch.sin(ang.double()).float()
    sin = torch.cat([-sin[:, :half], sin[:, half:]], dim=1)
    return cos, sin


class Llama(torch.nn.Module):
    """RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU; parameter names as dev.jlens Llama.parameters()."""

    def __init__(self, m, sd):
        super().__init__()
        self.m = m
        P = torch.nn.Parameter
        self.params = torch.nn.ParameterDict()
        self.names = []

        def put(name, t):
            self.params[name.replace(".", "__")] = P(t)
            self.names.append(name)

        put("model.embed_tokens.weight", sd["model.embed_tokens.weight"])
        for i in range(m["n_layers"]):
            p = f"model.layers.{i}."
            put(p + "input_layernorm.weight", sd[p + "input_layernorm.weight"])
            put(p + "self_attn.qkv_proj.weight", torch.cat([sd[p + "self_attn.q_proj.weight"],
                                                            sd[p + "self_attn.k_proj.weight"],
                                                            sd[p + "self_attn.v_proj.weight"]], 0))
            put(p + "self_attn.o_proj.weight", sd[p + "self_attn.o_proj.weight"])
            put(p + "post_attention_layernorm.weight", sd[p + "post_attention_layernorm.weight"])
            put(p + "mlp.gate_up_proj.weight", torch.cat([sd[p + "mlp.gate_proj.weight"],
                                                          sd[p + "mlp.up_proj.weight"]], 0))
            put(p + "mlp.down_proj.weight", sd[p + "mlp.down_proj.weight"])
        put("model.norm.weight", sd["model.norm.weight"])
        put("lm_head.weight", sd["lm_head.weight"] if "lm_head.weight" in sd else sd["model.embed_tokens.weight"])
        cos, sin = rope_tables(m["n_ctx"], m["d_head"], m["rope_theta"])
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def p(self, name):
        return self.params[name.replace(".", "__")]

    def rms(self, x, w):
        return x / (x.square().mean(-1, keepdim=True) + self.m["norm_eps"]).sqrt() * w

    @staticmethod
    def rotate(x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([x2, x1], dim=-1) * sin

    def forward(self, ids):
        m = self.m
        b, p = ids.shape
        h, kvh, dh = m["n_heads"], m["n_kv_heads"], m["d_head"]
        g = h // kvh
        cos = self.cos[:p][None, :, None, :]
        sin = self.sin[:p][None, :, None, :]
        mask = torch.full((p, p), float("-inf")).triu(1)
        x = F.embedding(ids, self.p("model.embed_tokens.weight"))
        for i in range(m["n_layers"]):
            pre = f"model.layers.{i}."
            a = self.rms(x, self.p(pre + "input_layernorm.weight"))
            q, k, v = F.linear(a, self.p(pre + "self_attn.qkv_proj.weight")).split([h * dh, kvh * dh, kvh * dh], -1)
            q = self.rotate(q.view(b, p, h, dh), cos, sin).transpose(1, 2)         # [b, h, p, d]
            k = self.rotate(k.view(b, p, kvh, dh), cos, sin).permute(0, 2, 3, 1)   # [b, kvh, d, p]
            v = v.view(b, p, kvh, dh).transpose(1, 2)                               # [b, kvh, p, d]
            scores = (q.reshape(b, kvh, g, p, dh) @ k.unsqueeze(2)).reshape(b, h, p, p)
            pattern = (scores * (1.0 / math.sqrt(dh)) + mask).softmax(-1)
            z = (pattern.reshape(b, kvh, g, p, p) @ v.unsqueeze(2)).reshape(b, h, p, dh)
            x = x + F.linear(z.transpose(1, 2).reshape(b, p, h * dh), self.p(pre + "self_attn.o_proj.weight"))
            a = self.rms(x, self.p(pre + "post_attention_layernorm.weight"))
            gate, up = F.linear(a, self.p(pre + "mlp.gate_up_proj.weight")).chunk(2, -1)
            x = x + F.linear(F.silu(gate) * up, self.p(pre + "mlp.down_proj.weight"))
        return F.linear(self.rms(x, self.p("model.norm.weight")), self.p("lm_head.weight"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    torch.set_num_threads(spec.get("torch_threads", 1))
    torch.manual_seed(0)
    m = spec["model"]
    model = Llama(m, load_safetensors(spec["weights"]))
    steps, bsz, seq = spec["steps"], spec["batch"], spec["seq"]
    with open(spec["tokens"], "rb") as f:
        tokens = torch.frombuffer(bytearray(f.read()), dtype=torch.int64).view(steps, bsz, seq).clone()
    decayed = set(spec["decayed"])
    groups = [
        {"params": [model.p(n) for n in model.names if n in decayed], "weight_decay": spec["weight_decay"]},
        {"params": [model.p(n) for n in model.names if n not in decayed], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=spec["lrs"][0], betas=tuple(spec["betas"]), eps=spec["eps"],
                            foreach=bool(spec.get("foreach", False)))
    params = list(model.parameters())
    clip = spec.get("grad_clip")
    lrs = spec["lrs"]
    vocab = m["vocab"]
    step = 0

    def train_step(i):
        ids = tokens[i]
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        for g in opt.param_groups:
            g["lr"] = lrs[i]
        opt.step()
        return loss.item()

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        n = int(cmd[1])
        if cmd[0] == "run":
            if step + n > steps:
                raise ValueError(f"asked for steps up to {step + n}, the spec has {steps}")
            t0 = time.perf_counter()
            losses = [train_step(step + j) for j in range(n)]
            secs = time.perf_counter() - t0
            step += n
            print(json.dumps({"seconds": secs, "losses": losses, "step": step}), flush=True)
        elif cmd[0] == "opt":
            t0 = time.perf_counter()
            for _ in range(n):
                opt.step()
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
        else:
            raise ValueError(f"unknown command {cmd[0]!r}; expected run N, opt N or quit")


if __name__ == "__main__":
    main()

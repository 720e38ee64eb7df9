"""PyTorch fp32 baselines for the WebGPU kernel benchmarks, run on the GPU machine in the same command as ours
(TF32 off: the same arithmetic WebGPU's f32 kernels do). Writes JSON that bench.ts reads with --baseline.
    python3 torch_bench.py --suite matmul --shapes 4096x4096x4096,... --iters 20 --out torch.json
    python3 torch_bench.py --suite loss --shapes 8192x32768 --out torch-loss.json       (N x V, forward KL fwd+bwd)
    python3 torch_bench.py --suite attention --shapes 8x1024x12x4x64 --out torch-attn.json (B x T x H x Hkv x D)
    python3 torch_bench.py --suite train --shapes base-17m:32:256 --out torch-train.json   (preset:B:T)
"""
import argparse, json, sys, time

import torch
import torch.nn.functional as F


def timed(fn, iters):
    fn()  # warm-up: cuBLAS heuristics, allocator
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def bench_matmul(spec, iters, dev):
    M, N, K = (int(x) for x in spec.split("x"))
    A = torch.rand(M, K, device=dev) * 2 - 1
    B = torch.rand(K, N, device=dev) * 2 - 1
    C = torch.empty(M, N, device=dev)
    ms = timed(lambda: torch.matmul(A, B, out=C), iters)
    return {"M": M, "N": N, "K": K, "ms": ms, "tflops": 2 * M * N * K / (ms * 1e-3) / 1e12}


def bench_loss(spec, iters, dev):
    """Eager forward KL(teacher || student) forward + backward w.r.t. the student logits (as TRL/DistillKit do)."""
    N, V = (int(x) for x in spec.split("x"))
    s = torch.randn(N, V, device=dev, requires_grad=True)
    t = torch.randn(N, V, device=dev)

    def step():
        loss = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
        s.grad = None
        loss.backward()

    ms = timed(step, iters)
    # Minimum traffic of a fused kernel: read student and teacher logits, write the gradient.
    return {"N": N, "V": V, "ms": ms, "gbps": 3 * N * V * 4 / (ms * 1e-3) / 1e9}


def bench_attention(spec, iters, dev):
    """Eager causal GQA attention forward + backward, math formulation (scores materialised), fp32."""
    B, T, H, Hkv, D = (int(x) for x in spec.split("x"))
    q = torch.randn(B, H, T, D, device=dev, requires_grad=True)
    k = torch.randn(B, Hkv, T, D, device=dev, requires_grad=True)
    v = torch.randn(B, Hkv, T, D, device=dev, requires_grad=True)
    do = torch.randn(B, H, T, D, device=dev)
    mask = torch.ones(T, T, device=dev, dtype=torch.bool).tril()

    def step():
        kk = k.repeat_interleave(H // Hkv, dim=1)
        vv = v.repeat_interleave(H // Hkv, dim=1)
        att = (q @ kk.transpose(-2, -1)) * D ** -0.5
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        o = att @ vv
        q.grad = k.grad = v.grad = None
        o.backward(do)

    ms = timed(step, iters)
    # Useful FLOPs: 2 matmuls forward (QKᵀ, PV) and 4 backward (dV, dP, dQ, dK), each over the causal half of T².
    flops = 6 * 2 * B * H * T * T * D / 2
    return {"B": B, "T": T, "H": H, "Hkv": Hkv, "D": D, "ms": ms, "tflops": flops / (ms * 1e-3) / 1e12}


# The presets of src/model/config.ts that the train suite uses (keep in sync): V, C, L, H, Hkv, D, F, tied.
PRESETS = {
    "tiny-1m": (2048, 128, 4, 4, 2, 32, 352, True),
    "base-17m": (8192, 384, 6, 6, 6, 64, 1024, False),
}


class Llama(torch.nn.Module):
    """The student architecture of src/model (HF LlamaForCausalLM): RMSNorm, RoPE (rotate_half), GQA, SwiGLU."""

    def __init__(self, V, C, L, H, Hkv, D, F, tied, T, theta=10000.0, eps=1e-5):
        super().__init__()
        nn = torch.nn
        self.H, self.Hkv, self.D, self.eps = H, Hkv, D, eps
        self.wte = nn.Embedding(V, C)
        self.layers = nn.ModuleList()
        for _ in range(L):
            self.layers.append(nn.ModuleDict(dict(
                q=nn.Linear(C, H * D, bias=False), k=nn.Linear(C, Hkv * D, bias=False),
                v=nn.Linear(C, Hkv * D, bias=False), o=nn.Linear(H * D, C, bias=False),
                gate=nn.Linear(C, F, bias=False), up=nn.Linear(C, F, bias=False), down=nn.Linear(F, C, bias=False))))
        self.norms = nn.ParameterList([nn.Parameter(torch.ones(C)) for _ in range(2 * L + 1)])
        self.lm_head = None if tied else nn.Linear(C, V, bias=False)
        inv = theta ** (-torch.arange(0, D, 2).float() / D)
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1))
        self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1))

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x):  # (B, heads, T, D)
        x1, x2 = x.chunk(2, -1)
        return x * self.cos + torch.cat([-x2, x1], -1) * self.sin

    def forward(self, ids):
        B, T = ids.shape
        x = self.wte(ids)
        mask = torch.ones(T, T, device=ids.device, dtype=torch.bool).tril()
        for i, l in enumerate(self.layers):
            h = self.rms(x, self.norms[2 * i])
            q = self.rope(l["q"](h).view(B, T, self.H, self.D).transpose(1, 2))
            k = self.rope(l["k"](h).view(B, T, self.Hkv, self.D).transpose(1, 2)).repeat_interleave(self.H // self.Hkv, 1)
            v = l["v"](h).view(B, T, self.Hkv, self.D).transpose(1, 2).repeat_interleave(self.H // self.Hkv, 1)
            att = (q @ k.transpose(-2, -1)) * self.D ** -0.5
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            x = x + l["o"]((att @ v).transpose(1, 2).reshape(B, T, self.H * self.D))
            h = self.rms(x, self.norms[2 * i + 1])
            x = x + l["down"](F.silu(l["gate"](h)) * l["up"](h))
        x = self.rms(x, self.norms[-1])
        return x @ (self.wte.weight if self.lm_head is None else self.lm_head.weight).T


def bench_train(spec, iters, dev):
    """Eager fp32 training step (forward, CE, backward, clip 1.0, AdamW) of the same model, same B and T."""
    preset, B, T = spec.split(":")
    B, T = int(B), int(T)
    V, C, L, H, Hkv, D, Fdim, tied = PRESETS[preset]
    model = Llama(V, C, L, H, Hkv, D, Fdim, tied, T).to(dev)
    decay = [p for n, p in model.named_parameters() if "norms" not in n]
    no_decay = [p for n, p in model.named_parameters() if "norms" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.95), foreach=True)
    ids = torch.randint(0, V, (B, T), device=dev)
    labels = torch.randint(0, V, (B, T), device=dev)

    def step():
        loss = F.cross_entropy(model(ids).view(-1, V), labels.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    ms = timed(step, iters)
    return {"shape": spec, "ms": ms, "ktok_s": B * T / (ms * 1e-3) / 1e3, "params": sum(p.numel() for p in model.parameters())}


SUITES = {"matmul": bench_matmul, "loss": bench_loss, "attention": bench_attention, "train": bench_train}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="matmul", choices=sorted(SUITES))
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    rows = []
    for spec in a.shapes.split(","):
        row = SUITES[a.suite](spec, a.iters, dev)
        rows.append(row)
        print(f"torch {a.suite} {spec:>20} {row['ms']:9.3f} ms", file=sys.stderr)
    info = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__, "suite": a.suite,
            "device": torch.cuda.get_device_name(0), "tf32": False, "results": rows}
    with open(a.out, "w") as f:
        json.dump(info, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

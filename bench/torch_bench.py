"""PyTorch fp32 baselines for the WebGPU kernel benchmarks, run on the GPU machine in the same command as ours
(TF32 off: the same arithmetic WebGPU's f32 kernels do). Writes JSON that bench.ts reads with --baseline.
    python3 torch_bench.py --suite matmul --shapes 4096x4096x4096,... --iters 20 --out torch.json
    python3 torch_bench.py --suite loss --shapes 8192x32768 --out torch-loss.json       (N x V, forward KL fwd+bwd)
    python3 torch_bench.py --suite attention --shapes 8x1024x12x4x64 --out torch-attn.json (B x T x H x Hkv x D)
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


SUITES = {"matmul": bench_matmul, "loss": bench_loss, "attention": bench_attention}


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

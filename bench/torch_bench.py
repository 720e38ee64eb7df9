"""PyTorch fp32 baseline for the WebGPU kernel benchmarks, on the GPU machine (TF32 off: the same arithmetic
WebGPU's f32 kernels do). Writes JSON rows {M, N, K, ms, tflops} that bench.ts reads with --baseline.
    python3 torch_bench.py --shapes 4096x4096x4096,... --iters 20 --out torch.json
"""
import argparse, json, sys, time

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
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
        M, N, K = (int(x) for x in spec.split("x"))
        A = torch.rand(M, K, device=dev) * 2 - 1
        B = torch.rand(K, N, device=dev) * 2 - 1
        C = torch.empty(M, N, device=dev)
        torch.matmul(A, B, out=C)  # warm-up (cuBLAS heuristics, allocations)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(a.iters):
            torch.matmul(A, B, out=C)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / a.iters
        tflops = 2 * M * N * K / (ms * 1e-3) / 1e12
        rows.append({"M": M, "N": N, "K": K, "ms": ms, "tflops": tflops})
        print(f"torch fp32 {spec:>16} {ms:9.3f} ms {tflops:8.2f} TFLOP/s", file=sys.stderr)
    info = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0), "tf32": False, "results": rows}
    with open(a.out, "w") as f:
        json.dump(info, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

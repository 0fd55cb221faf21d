"""PyTorch (eager, CUDA) reference for tests/bench/bench_gpu.lua: examples/s of one training step on
the GPU, for the same models, batch and step as the Lua side, in the same session on the same
machine. Steps: "teacher" (784-1200-1200-10 MLP, cross-entropy), "cnn" (the CNN teacher of
retort.models.cnn: two conv-ReLU-pool blocks, fc 128, dropout 0.3), "kd" (frozen 784-1200-1200-10
teacher in eval mode without a graph, 784-800-800-10 student, Hinton KD loss at T 4, alpha 0.9).
SGD with momentum 0.9. Precision "f32" (the default): full fp32 (TF32 off, PyTorch's matmul default);
"bf16": the forward and loss under torch.autocast("cuda", dtype=torch.bfloat16), as retort's
autocast (bf16 products on the tensor cores, f32 weights), the backward outside it.

    python3 tests/bench/torch_gpu_step.py kd 128 200 [f32|bf16]
prints one line: examples_per_s=<float> peak_mb=<float> (torch.cuda.max_memory_allocated)
"""
import contextlib
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def cnn():
    # mirrors lua/retort/models/cnn.lua with dropout 0.3: 32 and 64 channels, fc 128
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))


def main():
    kind, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    precision = sys.argv[4] if len(sys.argv) > 4 else "f32"
    if precision not in ("f32", "bf16"):
        raise SystemExit(f"unknown precision {precision!r} (f32, bf16)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    torch.manual_seed(0)
    y = torch.randint(0, 10, (batch,), device=dev)
    teacher = None
    if kind == "teacher":
        net, x = mlp([784, 1200, 1200, 10]), torch.randn(batch, 784)
    elif kind == "cnn":
        net, x = cnn(), torch.randn(batch, 1, 28, 28)
    elif kind == "kd":
        net, x = mlp([784, 800, 800, 10]), torch.randn(batch, 784)
        teacher = mlp([784, 1200, 1200, 10]).to(dev).eval()
    else:
        raise SystemExit(f"unknown step {kind!r} (teacher, cnn, kd)")
    net, x = net.to(dev), x.to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    T, alpha = 4.0, 0.9

    def autocast():
        if precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            s = net(x)
            if teacher is None:
                loss = F.cross_entropy(s, y)
            else:
                with torch.no_grad():
                    t = teacher(x)
                kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean",
                              log_target=True)
                loss = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s, y)
        loss.backward()
        opt.step()

    for _ in range(max(10, iters // 10)):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    best = float("inf")
    for _ in range(3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f"examples_per_s={batch * iters / best:.1f} peak_mb={peak:.1f} launches_per_step={launches(step):.0f}")


def launches(step, steps=5):
    """Kernel launches, copies and memsets the host issues per step (the runtime API calls seen by the
    profiler), to set beside retort.cuda.launches(); -1 when the profiler is unavailable."""
    names = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaMemcpyAsync",
             "cudaMemsetAsync")
    try:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        return sum(e.count for e in prof.key_averages() if e.key in names) / steps
    except Exception:  # an optional figure: never fail the benchmark over it
        return -1


if __name__ == "__main__":
    main()

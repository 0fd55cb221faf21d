"""PyTorch reference for tests/bench/bench_train.lua: examples/s of a training step (forward,
cross-entropy, backward, SGD with momentum) at a given batch size, for the MLPs and the small
CNN. Run by the Lua benchmark in the same session so both see the same machine; DESIGN.md §6
asks for PyTorch's best thread set-up: 1 torch thread with OpenBLAS on 2 threads for MLPs, 2
torch threads with OMP_WAIT_POLICY=PASSIVE for CNNs (the caller sets the environment).

    /usr/bin/python3 tests/bench/torch_train_step.py mlp 784,1200,1200,10 128 200 1
    /usr/bin/python3 tests/bench/torch_train_step.py cnn 32,64,128 128 30 2
    /usr/bin/python3 tests/bench/torch_train_step.py thin 16,32,32,64,64 128 20 2
    /usr/bin/python3 tests/bench/torch_train_step.py functional 784,1200,1200,10 128 200 1
(functional: the MLP written with tensor ops, no nn/optim: torch.matmul + bias, relu, log_softmax,
gather/sum NLL, and p.add_(p.grad * -lr) under no_grad, as bench_train.lua's twin writes it)
prints one line: examples_per_s=<float> peak_rss_kb=<int> (the process's peak resident memory)
"""
import resource
import sys
import time

import torch
import torch.nn as nn


def build(kind, spec):
    sizes = [int(s) for s in spec.split(",")]
    if kind == "mlp":
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers), (sizes[0],)
    if kind == "thin":  # thin-deep CNN: 3x3 conv (no bias) + BN + ReLU each, pools after the 2nd and 4th
        layers, cin, hw = [], 3, 32
        for i, c in enumerate(sizes):
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
                hw //= 2
            cin = c
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * hw * hw, 10)), (3, 32, 32)
    c1, c2, fc = sizes  # small CNN: conv-relu-pool x2, fc, fc
    net = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, fc), nn.ReLU(), nn.Linear(fc, 10))
    return net, (1, 28, 28)


def functional_step(spec, batch):
    """The functional twin: parameters are plain tensors (w is in x out), plain SGD without momentum."""
    sizes = [int(s) for s in spec.split(",")]
    params, lr = [], 0.01
    for i in range(len(sizes) - 1):
        bound = 1 / sizes[i] ** 0.5
        params.append((torch.rand(sizes[i], sizes[i + 1]) * (2 * bound) - bound).requires_grad_())
        params.append((torch.rand(sizes[i + 1]) * (2 * bound) - bound).requires_grad_())
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, 10, (batch, 1))

    def step():
        for p in params:
            p.grad = None
        h = x
        for i in range(0, len(params), 2):
            h = torch.matmul(h, params[i]) + params[i + 1]
            if i + 2 < len(params):
                h = torch.relu(h)
        loss = torch.log_softmax(h, 1).gather(1, y).sum() * (-1 / batch)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad * -lr)

    return step


def main():
    kind, spec, batch, iters, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if kind == "functional":
        step = functional_step(spec, batch)
        timed(step, batch, iters)
        return
    net, shape = build(kind, spec)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    timed(step, batch, iters)


def timed(step, batch, iters):
    for _ in range(max(3, iters // 10)):
        step()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        best = min(best, time.perf_counter() - t0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"examples_per_s={batch * iters / best:.1f} peak_rss_kb={peak_kb}")


if __name__ == "__main__":
    main()

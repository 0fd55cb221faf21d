"""PyTorch reference for tests/bench/bench_dist.sh: examples/s of a data-parallel training step (forward,
cross-entropy, backward with DistributedDataParallel's gradient buckets on gloo, SGD with momentum) on
RANKS processes of one thread each, a fixed batch of BATCH per rank, and of rank 0 alone (the plain model,
no DDP, while the others wait at a barrier), in alternating rounds as bench_dist.lua measures retort.

    /usr/bin/python3 tests/bench/torch_ddp_step.py mlp 128 20 2
prints: alone: examples_per_s=.. step_ms=.., then 2 ranks: examples_per_s=<over all ranks> step_ms=..,
then efficiency=<the ranks' examples/s over RANKS times rank 0's alone>
"""
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def build(kind):
    if kind == "mlp":  # Hinton's teacher, as models.mlp{sizes = {784, 1200, 1200, 10}}
        return nn.Sequential(nn.Linear(784, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
                             nn.Linear(1200, 10)), (784,)
    # models.cnn{}: conv 32 - relu - pool, conv 64 - relu - pool, fc 128 - relu, fc 10
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)), (1, 28, 28)


def run(rank, ranks, kind, batch, steps, port, out):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    plain, shape = build(kind)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=ranks)
    ddp = nn.parallel.DistributedDataParallel(plain)
    opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step(net):
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    def timed(net, n):
        dist.barrier()
        t0 = time.perf_counter()
        if net is not None:
            for _ in range(n):
                step(net)
        dist.barrier()
        return (time.perf_counter() - t0) / n

    alone_net = plain if rank == 0 else None
    timed(ddp, max(3, steps // 5))
    timed(alone_net, max(3, steps // 5))
    together, alone = float("inf"), float("inf")
    for _ in range(5):
        together = min(together, timed(ddp, steps))
        alone = min(alone, timed(alone_net, steps))
    if rank == 0:
        out.put((together, alone))
    dist.destroy_process_group()


def main():
    kind, batch, steps, ranks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.get_context("spawn").SimpleQueue()
    mp.spawn(run, args=(ranks, kind, batch, steps, port, out), nprocs=ranks, join=True)
    together, alone = out.get()
    print("alone: examples_per_s=%.1f step_ms=%.3f" % (batch / alone, 1e3 * alone))
    print("%d ranks: examples_per_s=%.1f step_ms=%.3f" % (ranks, ranks * batch / together, 1e3 * together))
    print("efficiency=%.3f" % (batch / together / (batch / alone)))


if __name__ == "__main__":
    main()

"""Training throughput: vae.fit against a DataLoader loop and bare in-memory loops.

All loops train the same VAE (categorical likelihood, digits, batch 128) for the same number of
epochs, after a warm-up, with Adam at lr 1e-3. The reference loops use torch's default Adam, as
pytorch/examples does; ``vae.fit`` uses the fused Adam, so a bare loop with the fused Adam is timed
too: the gap between it and ``vae.fit`` is what the library itself costs. Each loop is timed
``--repeats`` times in this one process, interleaved; the median is reported in examples per
second. The achieved FLOP/s of training is compared with the FLOP/s of a bare matrix multiply at
the same layer shapes. With ``--device cuda`` everything (data, models, matmuls) lives on the GPU
and the clock stops only after the GPU has finished (``torch.cuda.synchronize``).

    python benchmarks/throughput.py [--device cpu|cuda] [--batch-size 128] [--epochs 100] [--repeats 7]
                                    [--hidden 256] [--latent 16]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import vae


def new_model(args: argparse.Namespace) -> vae.VAE:
    torch.manual_seed(0)
    return vae.VAE(64, [args.hidden], args.latent, likelihood="categorical").to(args.device)


def wait(device: torch.device) -> None:
    """Let queued GPU work finish, so that the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def negative_elbo(model: vae.VAE, xb: torch.Tensor) -> torch.Tensor:
    """The batch's mean negative ELBO, written out with no checks and no bookkeeping."""
    h = model.encoder(xb / 16)
    mean, logvar = model.to_mean(h), model.to_logvar(h)
    z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
    kl = 0.5 * (torch.expm1(logvar) - logvar + mean.pow(2)).sum(-1)
    return (kl - model.lik.distribution(model.decoder(z)).log_prob(xb)).mean()


def step(model: vae.VAE, optimizer: torch.optim.Optimizer, xb: torch.Tensor) -> None:
    """One Adam step on the negative ELBO."""
    loss = negative_elbo(model, xb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bare_loop(model: vae.VAE, x: torch.Tensor, epochs: int, batch_size: int, fused: bool = False) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    for _ in range(epochs):
        for xb in x[torch.randperm(len(x), device=x.device)].split(batch_size):
            step(model, optimizer, xb)


def fused_bare_loop(model: vae.VAE, x: torch.Tensor, epochs: int, batch_size: int) -> None:
    bare_loop(model, x, epochs, batch_size, fused=True)


def dataloader_loop(model: vae.VAE, x: torch.Tensor, epochs: int, batch_size: int) -> None:
    """The pattern of pytorch/examples' VAE: a DataLoader over a TensorDataset."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for (xb,) in loader:
            step(model, optimizer, xb)


def fit_loop(model: vae.VAE, x: torch.Tensor, epochs: int, batch_size: int) -> None:
    vae.fit(model, x, epochs=epochs, batch_size=batch_size, lr=1e-3, progress=False, device=x.device)


def time_it(fn, args, x) -> float:
    model = new_model(args)
    fn(model, x, 1, args.batch_size)  # warm-up
    wait(args.device)
    start = time.perf_counter()
    fn(model, x, args.epochs, args.batch_size)
    wait(args.device)
    return time.perf_counter() - start


def phase_times(args: argparse.Namespace, x: torch.Tensor, steps: int = 300) -> dict[str, float]:
    """Seconds per training step spent in the forward pass and loss, the backward pass and Adam."""
    model = new_model(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as vae.fit
    batches = x[torch.randperm(len(x), device=x.device)[: args.batch_size]]
    totals = {"forward and loss": 0.0, "backward": 0.0, "Adam step": 0.0}
    for i in range(steps + 20):  # the first 20 steps warm up
        wait(args.device)
        t0 = time.perf_counter()
        loss = negative_elbo(model, batches)
        wait(args.device)
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        wait(args.device)
        t2 = time.perf_counter()
        optimizer.step()
        wait(args.device)
        t3 = time.perf_counter()
        if i >= 20:
            for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2)):
                totals[key] += dt / steps
    return totals


def matmul_flops(shapes: list[tuple[int, int]], batch: int, device: torch.device, repeats: int = 200) -> float:
    """Dense FLOP/s of forward and backward matmuls at the layers' shapes."""
    mats = [tuple(torch.randn(*shape, device=device) for shape in ((batch, i), (i, o), (batch, o))) for i, o in shapes]
    flops = 0
    for _ in range(10):
        for a, w, g in mats:
            a @ w, g @ w.T, a.T @ g
    wait(device)
    start = time.perf_counter()
    for _ in range(repeats):
        for a, w, g in mats:
            a @ w, g @ w.T, a.T @ g  # forward, grad wrt input, grad wrt weight
            flops += 3 * 2 * a.shape[0] * w.shape[0] * w.shape[1]
    wait(device)
    return flops / (time.perf_counter() - start)


def device(name: str) -> torch.device:
    try:
        return vae.pick_device(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=device, default=torch.device("cpu"), help="cpu (default) or cuda")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--latent", type=int, default=16)
    args = parser.parse_args()

    x = vae.load_digits().train.levels.to(args.device)
    loops = {
        "DataLoader (pytorch/examples)": dataloader_loop,
        "bare in-memory loop": bare_loop,
        "bare loop, fused Adam": fused_bare_loop,
        "vae.fit (fused Adam)": fit_loop,
    }
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit all three alike
        for name, fn in loops.items():
            times[name].append(time_it(fn, args, x))
    rate = {name: args.epochs * len(x) / statistics.median(t) for name, t in times.items()}

    where = platform.processor() or platform.machine()
    if args.device.type == "cuda":
        where = torch.cuda.get_device_name(args.device)
    print(f"{where}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; VAE 64-{args.hidden}-{args.latent}, categorical(17), "
          f"batch {args.batch_size}, {args.epochs} epochs of {len(x)}, median of {args.repeats}")
    print(f"{'loop':32s} {'examples/s':>11s} {'vs DataLoader':>14s} {'vs bare':>8s} {'vs fused bare':>14s} {'spread':>7s}")
    for name, r in rate.items():
        spread = (max(times[name]) - min(times[name])) / statistics.median(times[name])
        print(f"{name:32s} {r:11,.0f} {r / rate['DataLoader (pytorch/examples)']:14.3f} "
              f"{r / rate['bare in-memory loop']:8.3f} {r / rate['bare loop, fused Adam']:14.3f} {spread:7.1%}")

    shapes = [(64, args.hidden), (args.hidden, args.latent), (args.hidden, args.latent),
              (args.latent, args.hidden), (args.hidden, 64 * 17)]
    per_example = sum(3 * 2 * i * o for i, o in shapes)  # forward + two backward matmuls
    achieved = per_example * rate["vae.fit (fused Adam)"]
    peak = matmul_flops(shapes, args.batch_size, args.device)
    print(f"\nmatmul FLOPs per example (forward + backward): {per_example:,}")
    print(f"achieved by vae.fit: {achieved / 1e9:.2f} GFLOP/s; dense matmul at the same shapes: "
          f"{peak / 1e9:.2f} GFLOP/s; fraction {achieved / peak:.1%}")
    phases = phase_times(args, x)
    step = sum(phases.values())
    matmul = per_example * args.batch_size / peak
    print(f"\none step of batch {args.batch_size}: {step * 1e3:.2f} ms, of which the matmuls alone would take "
          f"{matmul * 1e3:.2f} ms ({matmul / step:.0%}); where the time goes:")
    for name, seconds in phases.items():
        print(f"  {name:18s} {seconds * 1e3:6.2f} ms  {seconds / step:4.0%}")
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

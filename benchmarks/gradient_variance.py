"""How noisy is the gradient of the IWAE bound, for the encoder and for the decoder, as k grows?

Rainforth et al. (2018), "Tighter variational bounds are not necessarily better": for the IWAE
bound with k draws, the signal-to-noise ratio of the gradient estimate, SNR = |E[g]| / std(g) per
parameter, rises like √k for the decoder's (generative) parameters but falls like 1/√k for the
encoder's (inference) parameters: as the bound tightens, its gradient with respect to q shrinks
like 1/k (at k = ∞ the bound is log p(x), which does not depend on q) faster than its noise does.

This script trains a small VAE on the 8 × 8 digits (categorical likelihood) on the ELBO, then,
for each k and for each of ``--digits`` test digits on its own (the single-data-point setting of
Rainforth et al.; ``--batch b`` takes the mean bound over b digits at a time instead), draws
``--repeats`` independent gradient estimates of the IWAE bound. Per parameter group it reports
the median over digits and parameters of the SNR (and its ratio to k = 1), of |E[g]| and of
std(g). It runs in about a minute on one CPU core:

    OMP_NUM_THREADS=1 python benchmarks/gradient_variance.py [--ks 1 5 25 100] [--repeats 200]
                                                            [--digits 8] [--batch 1] [--epochs 30]
"""

from __future__ import annotations

import argparse
import time

import torch

import vae
from vae.objectives import iwae_bound


def gradient_estimates(model: vae.VAE, x: torch.Tensor, k: int, repeats: int,
                       groups: dict[str, list[torch.nn.Parameter]]) -> dict[str, torch.Tensor]:
    """``repeats`` independent estimates of ∇ mean IWAE_k(x), per group of parameters: [repeats, P] each."""
    parameters = [p for group in groups.values() for p in group]
    rows = []
    for _ in range(repeats):
        grads = torch.autograd.grad(iwae_bound(model, x, k).mean(), parameters)
        rows.append(torch.cat([g.flatten() for g in grads]))
    estimates = torch.stack(rows)
    sizes = [sum(p.numel() for p in group) for group in groups.values()]
    return dict(zip(groups, estimates.split(sizes, dim=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 25, 100])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--digits", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--latent", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()

    digits = vae.load_digits()
    torch.manual_seed(args.seed)
    model = vae.VAE(64, [32], args.latent, likelihood="categorical")
    history = vae.fit(model, digits.train.levels, epochs=args.epochs, seed=args.seed, progress=False, device="cpu")
    groups = {
        "encoder": [*model.encoder.parameters(), *model.to_mean.parameters(), *model.to_logvar.parameters()],
        "decoder": list(model.decoder.parameters()),
    }
    batches = digits.test.levels[: args.digits * args.batch].split(args.batch)
    print(f"VAE 64 → 32 → {args.latent} → 32 → 64 × 17, trained {args.epochs} epochs on the ELBO "
          f"(train ELBO {history['train_elbo'][-1]:.1f} nats). Gradients of the IWAE bound "
          f"(mean over {args.batch} digit(s)) for {len(batches)} such batches of test digits, "
          f"{args.repeats} estimates per batch and k; medians over batches and parameters.\n")
    print(f"{'k':>5} | {'group':<7} | {'median SNR':>10} | {'vs k=1':>7} | {'median |E g|':>12} | {'median std g':>12}")
    print("-" * 70)
    first: dict[str, float] = {}
    torch.manual_seed(args.seed)
    for k in args.ks:
        per_batch = [gradient_estimates(model, x, k, args.repeats, groups) for x in batches]
        for group in groups:
            mean = torch.cat([g[group].mean(0) for g in per_batch])
            std = torch.cat([g[group].std(0) for g in per_batch])
            snr = (mean.abs() / std)[std > 0].median().item()
            first.setdefault(group, snr)
            print(f"{k:>5} | {group:<7} | {snr:>10.3f} | {snr / first[group]:>7.2f} | "
                  f"{mean.abs().median().item():>12.2e} | {std.median().item():>12.2e}")
    print(f"\n{time.perf_counter() - start:.0f} s in all, {torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    main()

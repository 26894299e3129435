"""Training speed of each GAN family at 64 px on random data (steps/s, images/s).

Usage: python benchmarks/gan_train.py [--size 64] [--width 16] [--batch 32] [--steps 20]
       [--families dcgan,resize_conv,stylegan_lite,resynth,ae_gan:dcgan] [--device cpu]

``ae_gan:DECODER`` times ``ae_gan`` with another family's generator as its decoder.

Timings on a shared 2-core CPU are noisy; the first 3 steps are a warm-up and not timed.
"""

from __future__ import annotations

import argparse
import time

import torch

from forensics.device import resolve_device
from trainers.gan.augment import parse_policy
from trainers.gan.config import FAMILIES, GanConfig
from trainers.gan.models import (
    count_params,
    create_generator,
    discriminator_params,
    make_discriminator,
)
from trainers.gan.step import train_step


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    family, _, decoder = name.partition(":")
    cfg = GanConfig(family=family, data=("-",), size=args.size, width=args.width, batch=args.batch,
                    disc=args.disc, features=args.features, decoder=decoder or "resize_conv",
                    z_dim=65 if family == "ae_gan" else GanConfig.z_dim)  # fmt: skip
    device = resolve_device(args.device)
    torch.manual_seed(0)
    G = create_generator(family, **cfg.model_kwargs()).to(device)
    D = make_discriminator(cfg).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(discriminator_params(D), lr=cfg.lr_d, betas=(0.0, 0.99))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    images = torch.randint(0, 256, (512, cfg.size, cfg.size, 3), dtype=torch.uint8, device=device)
    policy = parse_policy(cfg.diffaug)
    amp = device.type == "cuda"
    for step in range(3):
        train_step(cfg, step, G, D, opt_g, opt_d, scaler, scaler, images, 512, policy, device, amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for step in range(args.steps):
        train_step(cfg, step, G, D, opt_g, opt_d, scaler, scaler, images, 512, policy, device, amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {
        "steps_per_s": args.steps / dt,
        "images_per_s": args.steps * args.batch / dt,
        "g_params_M": count_params(G) / 1e6,
        "d_params_M": count_params(D) / 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=GanConfig.width)
    ap.add_argument("--batch", type=int, default=GanConfig.batch)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--disc", default="conv", help="conv, or projected (needs --features)")
    ap.add_argument("--features", default=None, help="MobileNetV2 weights (projected D)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch threads={torch.get_num_threads()} size={args.size} width={args.width} "
        f"batch={args.batch} device={args.device}"
    )
    for family in args.families.split(","):
        r = bench(family, args)
        print(
            f"{family:14s} {r['steps_per_s']:6.2f} steps/s {r['images_per_s']:7.1f} img/s  "
            f"G {r['g_params_M']:.2f}M  D {r['d_params_M']:.2f}M"
        )


if __name__ == "__main__":
    main()

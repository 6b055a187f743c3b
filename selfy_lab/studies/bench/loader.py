"""(e) Clips per second of the list-file loader beside the training step's throughput."""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch
from PIL import Image

from ...config.pairs import SELFY_TSM_R18, TSM_R18
from ...config.presets import resolve
from ...data.datasets import build_dataset
from ...data.loader import make_loader
from .measure import clip, make_model, time_call, train_step as one_step


def _loader_fixture(root: Path, clips: int, source_frames: int, size: tuple[int, int]) -> dict[str, Path]:
    """Frame folders (JPEG) and H.264 videos of ``clips`` clips of ``source_frames`` frames, with their
    list files (natural-image-like content: smooth gradients plus noise, so JPEG and H.264 work as on real
    frames)."""
    rng = np.random.default_rng(0)
    H, W = size
    yy, xx = np.mgrid[0:H, 0:W]
    frames_list, videos_list = [], []
    for c in range(clips):
        folder, video = root / "frames" / f"{c:04d}", root / "videos" / f"{c:04d}.mp4"
        folder.mkdir(parents=True, exist_ok=True)
        video.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(video), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.height, stream.width, stream.pix_fmt = H, W, "yuv420p"
            for t in range(source_frames):
                base = (xx + 3 * t + c) % 256 * 0.6 + yy % 256 * 0.3
                img = np.clip(base[..., None] + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{t + 1:05d}.jpg", quality=85)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        frames_list.append(f"{folder} {source_frames} {c % 2}")
        videos_list.append(f"{video} {c % 2}")
    (root / "frames.txt").write_text("\n".join(frames_list) + "\n")
    (root / "videos.txt").write_text("\n".join(videos_list) + "\n")
    (root / "classes.txt").write_text("a\nb\n")
    return {"frames": root / "frames.txt", "videos": root / "videos.txt", "categories": root / "classes.txt"}


def bench_loader(workers: tuple[int, ...] | None = None, clips: int = 48, batch: int = 8, device="cpu",
                 train_step: bool = True, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Clips per second of the list-file loader (training transform, 8 of 48 frames at 240x320 -> 224) from
    frame folders and from H.264 videos, with 0, 2 and N worker processes; beside it the training-step
    throughput (clips/s) of TSM-R18 and SELFYNet-TSM-R18 at 8 x 224^2, so a user sees which one bounds
    training on this machine."""
    n_cpu = os.cpu_count() or 1
    workers = workers or tuple(sorted({0, 2, n_cpu}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="selfy-lab-bench-") as tmp:
        progress("writing the loader's test clips")
        files = _loader_fixture(Path(tmp), clips, 48, (240, 320))
        for source in ("frames", "videos"):
            run = resolve("paper", "something-v1", {"model": {"num_classes": 2}, "data": {
                "train_list": str(files[source]), "val_list": str(files[source]), "categories": str(files["categories"]),
                "check": False, "list_format": "tsn" if source == "frames" else "two-column"}})
            ds = build_dataset(run, "train")
            for w in workers:
                progress(f"loader {source}, {w} workers")
                loader = make_loader(ds, batch_size=batch, seed=0, train=True, workers=w)
                t0 = time.perf_counter()
                seen = sum(len(y) for _, y in loader)
                dt = time.perf_counter() - t0  # includes starting the workers, as every epoch does
                rows.append(dict(benchmark="loader", impl=f"{source}, {w} workers", size=224, metric="clips_per_s",
                                 value=seen / dt))
    device = torch.device(device)
    for cfg in (TSM_R18, SELFY_TSM_R18) if train_step else ():
        progress(f"training step {cfg.block}")
        m = make_model(cfg, device, channels_last=True)
        x, y = clip(device, 8, 224, batch), torch.zeros(batch, dtype=torch.long, device=device)
        one_step(m, x, y, None)
        t = statistics.median(time_call(lambda: one_step(m, x, y, None), device) for _ in range(3))
        rows.append(dict(benchmark="loader", impl=f"train step {cfg.block}-{cfg.backbone}", size=224,
                         metric="clips_per_s", value=batch / t))
    return rows


"""Two gloo processes under torchrun: both step, batches are sharded, one model is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from detector_data import make_folders

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from trainers.detector.config import DetectorTrainConfig
    from trainers.detector.train import train_detector

    real, fake, out, report = sys.argv[1:5]
    cfg = DetectorTrainConfig(
        out=out, real=(real,), fake=(fake,), arch="patch_tiny", arch_kwargs={"width": 4},
        input_size=32, cache_side=64, batch_size=2, max_steps=3, eval_every=2,
        val_fraction=0.25, device="cpu", threads=1,
    )
    steps = []
    result = train_detector(cfg, on_step=lambda r: steps.append(r["step"]))
    rank = os.environ["RANK"]
    with open(os.path.join(report, f"rank{rank}.json"), "w") as fh:
        json.dump({"steps": result.steps, "world": os.environ["WORLD_SIZE"],
                   "callbacks": steps, "model": str(result.model_path)}, fh)
    """
)


def test_torchrun_two_gloo_processes(tmp_path, portrait_rgb):
    real, fake = make_folders(tmp_path / "data", portrait_rgb)
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    report = tmp_path / "report"
    report.mkdir()
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(real), str(fake), str(out), str(report)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = {p.name: json.loads(p.read_text()) for p in report.glob("rank*.json")}
    assert set(ranks) == {"rank0.json", "rank1.json"}
    for r in ranks.values():
        assert r["steps"] == 3 and r["world"] == "2"
    # Only rank 0 reports progress and writes the model; the model is written once.
    assert sorted(set(ranks["rank0.json"]["callbacks"])) == [1, 2, 3]
    assert ranks["rank1.json"]["callbacks"] == [] and ranks["rank1.json"]["model"] == "None"
    assert (out / "model.safetensors").is_file()
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "final" for r in records) == 1
    assert not list(out.glob(".*.tmp"))

"""Several processes (DDP, gloo): a 2-process step equals a 1-process step on the joined batch."""
import os
import subprocess
import sys

import torch
import torch.multiprocessing as mp

import dwn_hw
from dwn_hw.train import arch as arch_mod
from dwn_hw.train.loop import Dist, local_chunk, train_step, wrap_ddp

INPUTS = 24
BATCHES = (10, 9)  # 9 samples over 2 processes is 5 + 4: unequal chunks must weigh every sample the same


# SGD: a wrong gradient scale would show. Adam (what training uses): its fused mapping update
# must not bypass DDP's gradient all-reduce.
OPTIMIZERS = {"sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.5),
              "adam": lambda m: torch.optim.Adam(m.parameters(), lr=0.01)}


def _setup(batch):
    torch.manual_seed(0)
    model = arch_mod.build(arch_mod.make_arch(INPUTS, [12, 6], [3], 3, tau=2.0, first_mapping="learnable"))
    g = torch.Generator().manual_seed(1)
    bits = (torch.rand(batch, INPUTS, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (batch,), generator=g)
    return model, bits, y


def _step(model, opt, bits, y, d):
    idx = local_chunk(torch.arange(len(y)), d)
    train_step(wrap_ddp(model, d, torch.device("cpu")), opt, bits[idx], y[idx], len(y), d.world)
    return {k: v.detach().clone() for k, v in model.named_parameters()}, \
        {k: v.grad.detach().clone() if v.grad is not None else torch.zeros(0)
         for k, v in model.named_parameters()}


def _worker(rank, world, init_file, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = {}
        for batch in BATCHES:
            for opt_name in OPTIMIZERS:
                model, bits, y = _setup(batch)
                params, grads = _step(model, OPTIMIZERS[opt_name](model), bits, y, Dist(rank, world))
                results[f"{batch}{opt_name}"] = {"params": params, "grads": grads}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def test_two_process_step_equals_one_process_step(tmp_path):
    out = tmp_path / "ddp.pt"
    # fork (where there is one) skips re-importing torch in each child: seconds instead of tens
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True,
                       start_method=method)
    two = torch.load(out, weights_only=True)
    for batch in BATCHES:
        for opt_name in OPTIMIZERS:
            model, bits, y = _setup(batch)
            params, grads = _step(model, OPTIMIZERS[opt_name](model), bits, y, Dist(0, 1))
            got = two[f"{batch}{opt_name}"]
            for k in params:
                assert torch.allclose(got["params"][k], params[k], atol=1e-6, rtol=0), (batch, opt_name, k)
                if opt_name == "sgd":  # (fused Adam keeps the one-process mapping gradient internal)
                    assert torch.allclose(got["grads"][k], grads[k], atol=1e-6, rtol=0), (batch, k)
                    assert grads[k].abs().max() > 0, k


def test_torchrun_two_process_digits_run(tmp_path):
    out, log = tmp_path / "m.pt", tmp_path / "log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dwn_hw.train", "-q", "--layers", "40,20", "--lut-inputs", "3", "--bits", "2", "--epochs", "1",
           "--batch-size", "64", "--shift", "1", "-o", str(out), "--metrics-json", str(tmp_path / "metrics.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ck = dwn_hw.load(out)
    assert ck.meta["metrics"]["processes"] == 2 and ck.meta["metrics"]["epochs"] == 1
    assert ck.meta["options"]["shift"] == 1  # the augmentation runs under DDP too (offsets per global batch)
    assert 0.0 <= ck.meta["metrics"]["test_accuracy"] <= 1.0
    assert ck.predict_q(torch.zeros(2, 64, dtype=torch.int64).numpy()).shape == (2,)
    log.write_text(proc.stderr)

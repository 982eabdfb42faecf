"""The workspace's Hydra launchers (rl's extra `launchers`, configs in rl/conf/hydra/launcher): a real
two-job local multirun through joblib, and the SLURM launcher config composed (no sbatch)."""
import os
import subprocess
import sys

from hydra import compose, initialize


def test_two_job_multirun_runs_in_parallel_through_joblib(tmp_path):
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "synth", "-m", "hydra/launcher=joblib",
                          "hydra.launcher.n_jobs=2", "solver=fast,pulp", "n=2", "workers=1", "progress=false",
                          f"out={tmp_path / 'out'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in out.stdout + out.stderr, "the jobs did not go through joblib"
    for solver in ("fast", "pulp"):
        shard = tmp_path / "out" / f"shard_0_solver={solver}"
        assert (shard / "train.parquet").is_file() and (shard / "manifest.jsonl").read_text().count("\n") == 2
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]


def test_slurm_launcher_config_composes_for_the_rl_ablation_sweep():
    with initialize(version_base=None, config_path=None):
        cfg = compose("rl", overrides=["+experiment=ablation_1p5b", "sweep=ablation_1p5b",
                                       "hydra/launcher=slurm_h100", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    placed = (launcher.gpus_per_node, launcher.nodes, launcher.timeout_min, launcher.partition)
    assert placed == (8, 1, 2880, "gpu")
    assert dict(cfg.hydra.sweeper.params) == {"algorithm": "drpo,disco,grpo",
                                              "rl.reward.transform.kind": "log,power"}

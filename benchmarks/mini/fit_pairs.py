"""Keep the teacher's SFT pairs whose chat (prompt + response) fits the SFT context, so none is cut.

Step `data` of scripts/mini_pipeline.sh. veRL's SFT dataset fails on (or truncates) a longer conversation; a
truncated program would teach the model to stop mid-kernel, so such pairs are dropped here instead.
Lengths come from the model's tokenizer and chat template when --tokenizer names a model folder; without one
they are estimated as characters / 2.5 (SmolLM2's tokenizer averages about 3 characters per token on these
prompts and programs, so the estimate errs towards dropping).

    python benchmarks/mini/fit_pairs.py /tmp/mini/data/train/sft_pairs.parquet \\
        /tmp/mini/data/sft_pairs_fit.parquet --max-length 3072 --tokenizer /tmp/smol

Writes the kept pairs (same columns) and `<out stem>.json`: counts overall and per level, token lengths.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

CHARS_PER_TOKEN = 2.5


def conversation(prompt, response) -> list[dict]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt] + [
        {"role": "assistant", "content": str(response)}]


def lengths(pairs: pd.DataFrame, tokenizer: str | None) -> tuple[list[int], str]:
    """Token count of every pair's whole chat, and how it was counted."""
    chats = [conversation(p, r) for p, r in zip(pairs["prompt"], pairs["response"])]
    if not tokenizer:
        return [int(sum(len(m["content"]) for m in c) / CHARS_PER_TOKEN) for c in chats], "chars/2.5"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    texts = [tok.apply_chat_template(c, tokenize=False) for c in chats]
    return ([len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]],
            f"tokenizer of {tokenizer}")


def fit(pairs_path: str | Path, out_path: str | Path, max_length: int, tokenizer: str | None = None) -> dict:
    pairs = pd.read_parquet(pairs_path)
    missing = [c for c in ("prompt", "response", "level") if c not in pairs.columns]
    if missing:
        raise ValueError(f"{pairs_path} lacks column(s) {missing}: expected synth's sft_pairs.parquet")
    if pairs.empty:
        raise ValueError(f"{pairs_path} holds no pair: the teacher accepted nothing (see sft_summary.json)")
    n_tokens, counted = lengths(pairs, tokenizer)
    pairs = pairs.assign(tokens=n_tokens)
    kept = pairs[pairs["tokens"] <= max_length]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept.drop(columns="tokens").to_parquet(out, index=False)
    levels = sorted(int(v) for v in pairs["level"].unique())
    summary = {"pairs": len(pairs), "kept": len(kept), "dropped": len(pairs) - len(kept),
               "max_length": max_length, "counted_with": counted,
               "per_level": {str(lv): {"pairs": int((pairs["level"] == lv).sum()),
                                       "kept": int((kept["level"] == lv).sum())} for lv in levels},
               "tokens": {"mean": round(float(pairs["tokens"].mean()), 1), "max": int(pairs["tokens"].max()),
                          "kept_max": int(kept["tokens"].max()) if len(kept) else 0}}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(f"fit_pairs: kept {summary['kept']} of {summary['pairs']} pairs <= {max_length} tokens "
          f"({counted}) -> {out}")
    return summary


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pairs", help="synth's sft_pairs.parquet")
    p.add_argument("out", help="parquet of the pairs that fit")
    p.add_argument("--max-length", type=int, required=True, help="sft.data.max_length of the SFT experiment")
    p.add_argument("--tokenizer", default=None, help="model folder whose tokenizer counts the tokens")
    args = p.parse_args(argv)
    return fit(args.pairs, args.out, args.max_length, args.tokenizer)


if __name__ == "__main__":
    main()

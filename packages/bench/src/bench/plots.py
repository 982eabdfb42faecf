"""The speedup plot: distribution of per-task speedups per level, against eager and against torch.compile."""

from __future__ import annotations

import math
from pathlib import Path


def speedup_plot(rows: list[dict], path: Path, title: str = "") -> Path:
    """Strip plot with a box per level (log scale, line at 1x); correct tasks with a measured speedup only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    levels = sorted({int(r.get("level") or 0) for r in rows}) or [0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    plotted = False
    for ax, baseline, label in zip(axes, ("eager", "compile"), ("vs PyTorch eager", "vs torch.compile")):
        data = [
            [
                r[f"speedup_{baseline}"]
                for r in rows
                if int(r.get("level") or 0) == lv and r.get("accepted") and r.get(f"speedup_{baseline}")
            ]
            for lv in levels
        ]
        positions = list(range(1, len(levels) + 1))
        if any(data):
            plotted = True
            ax.boxplot([d or [math.nan] for d in data], positions=positions, widths=0.5, showfliers=False)
            for pos, d in zip(positions, data):
                ax.scatter([pos + 0.08 * ((i % 5) - 2) for i in range(len(d))], d, s=14, alpha=0.7)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if v in (0.5, 2, 3, 5) else ""))
        else:
            ax.text(
                0.5,
                0.5,
                "no measured speedups\n(the verifier times on GPU only)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set_xticks(
            positions, [f"L{lv}\n(n={sum(int(r.get('level') or 0) == lv for r in rows)})" for lv in levels]
        )
        ax.set_title(label)
        ax.set_xlabel("level")
    axes[0].set_ylabel("speedup (x, log scale)" if plotted else "speedup")
    fig.suptitle(title or "speedups of correct tasks")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Analyse a `collapse run` in Python: grouped mean ± SE from runs.parquet, plotted
against the theory column of summary.parquet.

    python examples/python/analyse.py results/golden-ratio [out.png]

Works for any run whose scenario sweeps `schedule.w` (golden-ratio, risk-vs-w, ...): the
final-iteration risk is grouped by w and by every other parameter that varies.
"""

import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import polars as pl

run = sys.argv[1] if len(sys.argv) > 1 else "results/golden-ratio"
out = sys.argv[2] if len(sys.argv) > 2 else f"{run}/risk-vs-w-python.png"

runs = pl.read_parquet(f"{run}/runs.parquet")
summary = pl.read_parquet(f"{run}/summary.parquet")
last = runs["iteration"].max()

# Parameter columns are `section.key` (numbers) or a section's plugin name (text); the
# ones that vary, other than w, define the groups (one line each).
params = [c for c in summary.columns if "." in c and c != "schedule.w" and summary[c].n_unique() > 1]
keys = ["schedule.w", *params]

stats = (
    runs.filter(pl.col("iteration") == last)
    .group_by(keys)
    .agg(
        mean=pl.col("risk").mean(),
        se=pl.col("risk").std() / pl.len().sqrt(),
        replicates=pl.len(),
    )
    .join(summary.filter(pl.col("iteration") == last).select(*keys, "risk_mean", "risk_theory"), on=keys)
    .sort(keys)
)
print(stats)

# The grouped means are the summary's own means: the two files tell the same story.
worst = (stats["mean"] - stats["risk_mean"]).abs().max()
assert worst < 1e-9 * stats["mean"].abs().max(), f"runs and summary disagree by {worst}"

fig, ax = plt.subplots(figsize=(7, 4.5))
for i, (group, g) in enumerate(stats.group_by(params, maintain_order=True) if params else [((), stats)]):
    colour = f"C{i}"
    label = "".join(f"{k} = {v}, " for k, v in zip(params, group))
    ax.errorbar(g["schedule.w"], g["mean"], yerr=2 * g["se"], fmt="o", ms=4, capsize=2, color=colour, label=f"{label}mean ± 2 SE")
    ax.plot(g["schedule.w"], g["risk_theory"], "-", color=colour, lw=1.5, label=f"{label}theory")
ax.set_xlabel("real-data weight w")
ax.set_ylabel(f"risk at iteration {last}")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=120)
print(f"wrote {out}")

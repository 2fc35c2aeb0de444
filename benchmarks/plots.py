"""Bar charts of benchmark timings, written as PNG files for the documentation (docs/img/).

matplotlib is optional (the `bench` extra): without it the benchmarks print their tables and skip the plot.
"""
from __future__ import annotations

from pathlib import Path

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "img"


def save_bar_chart(name: str, title: str, bars: dict, unit: str = "ms") -> Path | None:
    """Writes docs/img/NAME.png with one horizontal bar per entry of `bars` (label -> value)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"  (matplotlib is not installed: skipping the plot {name}.png; pip install -e '.[bench]')")
        return None
    IMAGES.mkdir(parents=True, exist_ok=True)
    labels, values = list(bars), list(bars.values())
    figure, axes = plt.subplots(figsize=(7, 0.5 + 0.45 * len(labels)))
    axes.barh(labels[::-1], values[::-1], color="#3f6fb5")
    for y, value in enumerate(values[::-1]):
        axes.text(value, y, f" {value:.3g} {unit}", va="center", fontsize=8)
    axes.set_xlabel(unit)
    axes.set_title(title, fontsize=10)
    axes.set_xlim(0, max(values) * 1.25)
    figure.tight_layout()
    path = IMAGES / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"  plot written to {path}")
    return path

"""Shared figure plumbing: the Agg backend, a common style, file names and the figure record."""
from dataclasses import dataclass
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

FIGURE_DIR = "figures"
DPI = 90
STAGE_COLORS = {"initial": "tab:gray", "projected": "tab:orange", "trained": "tab:blue"}
DALE_COLORS = {"project": "tab:red", "reparam": "tab:purple", "none": "tab:blue"}

plt.rcParams.update({
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "figure.titlesize": 12, "axes.grid": True, "grid.alpha": 0.3,
})


@dataclass
class FigureFile:
    """A written figure: its path relative to the report, a title and a one-line caption."""
    section: str
    path: str
    title: str
    caption: str


def slug(*parts) -> str:
    """A file-name-safe name from free text."""
    text = "_".join(str(p) for p in parts if str(p))
    return re.sub(r"[^a-z0-9.]+", "_", text.lower()).replace(".", "p").strip("_")


def save(fig, out_dir: str, name: str) -> str:
    """Writes fig as out_dir/figures/name.png; returns the path relative to out_dir."""
    relative = f"{FIGURE_DIR}/{name}.png"
    fig.savefig(os.path.join(out_dir, relative), dpi=DPI)
    plt.close(fig)
    return relative


def subplots(rows: int, cols: int, width: float, height: float, **kwargs):
    """A figure of rows x cols panels of width x height inches; axes always a 2-D array."""
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * height + 0.6),
                             squeeze=False, **kwargs)
    return fig, axes


def finish(fig, title: str, legend_axes=None, markerscale: float = 1.0,
           colorbar_image=None, colorbar_label: str = "") -> None:
    """Title on top, one legend below (the distinct labels of legend_axes) or one horizontal colour
    bar for colorbar_image, panels laid out between."""
    width, height = fig.get_size_inches()
    handles, labels = [], []
    for ax in np.ravel(legend_axes) if legend_axes is not None else []:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    columns = max(1, min(len(labels), int(width // 2.2)))
    bottom = (0.25 * -(-len(labels) // columns) + 0.1) / height if labels else 0.0
    if colorbar_image is not None:
        bottom = 0.8 / height
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=columns, markerscale=markerscale,
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0 - 0.35 / height))
    if colorbar_image is not None:
        bar = fig.add_axes((0.35, 0.3 / height, 0.3, 0.12 / height))
        fig.colorbar(colorbar_image, cax=bar, orientation="horizontal")
        bar.set_title(colorbar_label, fontsize=9)


def no_data(ax, text: str) -> None:
    """Marks a panel that has nothing to show."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def circle(ax, radius: float, **style) -> None:
    """Draws a circle of the given radius around the origin."""
    if np.isfinite(radius):
        theta = np.linspace(0.0, 2.0 * np.pi, 256)
        ax.plot(radius * np.cos(theta), radius * np.sin(theta), **style)

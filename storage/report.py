"""The HTML quality report: one self-contained file (plots and sample frames embedded) that
a person opens to judge a pseudo-labelled dataset."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _img(data: str, kind: str = "png", width: str = "100%") -> str:
    return f'<img src="data:image/{kind};base64,{data}" style="max-width:{width}">'


def distribution_plots(hands: pd.DataFrame) -> str:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    confidence = np.concatenate([np.asarray(c) for c in hands["confidence"]])
    axes[0].hist(confidence, bins=30, color="#4a7")
    axes[0].set(title="detector joint confidence", xlabel="confidence", ylabel="joints")
    axes[1].hist(hands["reprojection_px"].clip(upper=60), bins=30, color="#47a")
    axes[1].set(title="reprojection error (weighted, per hand)", xlabel="px (clipped at 60)",
                ylabel="hands")
    axes[2].hist(hands["quality"], bins=30, range=(0, 1), color="#a74")
    axes[2].set(title="quality score", xlabel="score", ylabel="hands")
    return _img(_png(figure))


def timeline_plot(hands: pd.DataFrame, n_frames: int, name: str) -> str:
    figure, axes = plt.subplots(2, 1, figsize=(13, 3.6), sharex=True)
    for side, colour, row in (("left", "#c55", 0), ("right", "#55c", 1)):
        part = hands[hands["side"] == side]
        axes[0].scatter(part["frame"], np.full(len(part), row), s=4, color=colour, label=side)
        axes[1].plot(part["frame"], part["reprojection_px"], ".", ms=3, color=colour, label=side)
    axes[0].set(yticks=[0, 1], yticklabels=["left", "right"], ylim=(-0.5, 1.5),
                title=f"{name}: hands detected per frame")
    axes[1].set(ylabel="reprojection px", xlabel="frame", xlim=(0, max(n_frames - 1, 1)))
    axes[1].legend(loc="upper right", fontsize=8)
    return _img(_png(figure))


def training_plot(metrics: pd.DataFrame) -> str:
    if metrics.empty:
        return "<p>No training metrics.</p>"
    figure, axis = plt.subplots(figsize=(6.5, 3))
    axis.plot(metrics["epoch"] + 1, metrics["reprojection_px"], "o-", label="3D joints projected")
    if "branch_px" in metrics:
        axis.plot(metrics["epoch"] + 1, metrics["branch_px"], "s-", label="2D branch")
    axis.set(xlabel="epoch", ylabel="px vs detections (weighted)", title="training")
    axis.legend()
    return _img(_png(figure), width="640px")


def _figures(images: list[tuple[str, bytes]], width: str) -> str:
    return "".join(
        f'<figure style="display:inline-block;margin:4px">'
        f'{_img(base64.b64encode(jpeg).decode(), "jpeg", width)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, jpeg in images)


def _rounds_section(rounds: tuple[pd.DataFrame, str] | None) -> list[str]:
    if rounds is None:
        return []
    table, note = rounds
    return ["<h2>Rounds of fit and training</h2>", f"<p>{html.escape(note)}</p>",
            table.to_html(index=False, float_format="%.2f", border=0)]


def render_report(title: str, summary: pd.DataFrame, hands: pd.DataFrame,
                  timelines: list[str], metrics: pd.DataFrame,
                  samples: list[tuple[str, bytes]], notes: list[str],
                  lowest: list[tuple[str, bytes]] = (),
                  rounds: tuple[pd.DataFrame, str] | None = None) -> str:
    """The report's HTML; ``samples`` are (caption, JPEG bytes) overlay frames, ``lowest``
    the crops of the lowest-quality hands, shown first; ``rounds`` the rounds of fit and
    training (a table and a note), where there were any."""
    sample_html = _figures(samples, "420px")
    body = [f"<h1>{html.escape(title)}</h1>",
            "".join(f"<p>{html.escape(n)}</p>" for n in notes),
            "<h2>Check first: the lowest-quality hands</h2>",
            "<p>White points: the detection; coloured skeleton: the label.</p>",
            _figures(list(lowest), "200px") or "<p>No detected hands.</p>",
            "<h2>Videos</h2>", summary.to_html(index=False, float_format="%.3f", border=0),
            "<h2>Distributions</h2>",
            distribution_plots(hands) if len(hands) else "<p>No hands.</p>",
            "<h2>Timelines</h2>", "".join(timelines),
            "<h2>Training</h2>", training_plot(metrics),
            *_rounds_section(rounds),
            "<h2>Sample overlay frames</h2>", sample_html or "<p>No overlay frames.</p>"]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>")

"""The demo's picture sheet: a grid of tiles with column titles and a note per row, and a
footer with the colour bars (in the units of their panels), the class legend with each
class's IoU, and caption lines with the run's figures (Pillow only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dpt_ros.synthetic.classes import CLASS_NAMES
from dpt_ros.synthetic.views import (
    DEPTH_CMAP,
    ERROR_CMAP,
    ERROR_MAX,
    class_colors,
    class_rgb,
    colormap_rgb,
    depth_rgb,
    error_rgb,
    nice_range,
)

TEXT = (235, 235, 235)
BACKGROUND = (20, 20, 20)
HEADER = 24  # pixels of column titles above the first row of tiles


@dataclass(frozen=True)
class ColorBar:
    """A horizontal colour bar: `cmap` from vmin to vmax, labelled ticks, a title."""

    title: str
    vmin: float
    vmax: float
    cmap: str
    ticks: tuple[float, ...]
    tick_format: str = "{:g}"
    clipped_top: bool = False  # the last tick label gets a "+": values above are clipped


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled scalable font (FreeType builds), else its bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def ticks(vmin: float, vmax: float, count: int = 6) -> tuple[float, ...]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) covering [vmin, vmax]."""
    raw = (vmax - vmin) / max(count - 1, 1)
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = np.ceil(vmin / step) * step
    return tuple(float(round(v, 6)) for v in np.arange(first, vmax + step * 1e-6, step))


def draw_color_bar(draw: ImageDraw.ImageDraw, canvas: Image.Image, bar: ColorBar,
                   xy: tuple[int, int], size: tuple[int, int]) -> None:
    x, y = xy
    w, h = size
    f = font(13)
    draw.text((x, y), bar.title, fill=TEXT, font=f)
    top = y + 18
    ramp = np.linspace(bar.vmin, bar.vmax, w, dtype=np.float32)[None].repeat(h, 0)
    canvas.paste(Image.fromarray(colormap_rgb(ramp, bar.vmin, bar.vmax, bar.cmap)), (x, top))
    span = bar.vmax - bar.vmin
    for i, t in enumerate(bar.ticks):
        tx = x + round((t - bar.vmin) / span * (w - 1))
        draw.line([(tx, top + h), (tx, top + h + 4)], fill=TEXT)
        label = bar.tick_format.format(t)
        if bar.clipped_top and i == len(bar.ticks) - 1:
            label += "+"  # the bundled font has no "≥"
        tw = draw.textlength(label, font=f)
        draw.text((min(max(tx - tw / 2, x), x + w - tw), top + h + 5), label, fill=TEXT, font=f)


def draw_legend(draw: ImageDraw.ImageDraw, entries: list[tuple[str, tuple[int, int, int], str]],
                xy: tuple[int, int], columns: int = 6, cell: tuple[int, int] = (150, 22)) -> None:
    """Swatch + "name  value" per class, `columns` per line."""
    f = font(14)
    x0, y0 = xy
    draw.text((x0, y0), "classes (colour: overlay and point cloud) and IoU", fill=TEXT,
              font=font(13))
    for i, (name, rgb, value) in enumerate(entries):
        x = x0 + (i % columns) * cell[0]
        y = y0 + 20 + (i // columns) * cell[1]
        draw.rectangle([x, y + 2, x + 14, y + 16], fill=tuple(int(c) for c in rgb),
                       outline=TEXT)
        draw.text((x + 20, y + 1), f"{name}  {value}", fill=TEXT, font=f)


def sheet(rows: list[list[np.ndarray]], titles: list[str], notes: list[str],
          bars: list[ColorBar], legend: list[tuple[str, tuple[int, int, int], str]],
          caption: list[str], nearest: frozenset[int] = frozenset(),
          tile: tuple[int, int] = (240, 320)) -> Image.Image:
    """Tiles (RGB uint8, any size) resized to `tile` (h, w) (columns in `nearest` with
    nearest-neighbour, e.g. class maps), titles above, `notes[r]` on the first tile of row r,
    then the footer: colour bars, legend, caption lines."""
    th, tw = tile
    header, footer = HEADER, 112 + 18 * max(len(caption) - 2, 0)
    width = tw * len(titles)
    out = Image.new("RGB", (width, header + th * len(rows) + footer), BACKGROUND)
    draw = ImageDraw.Draw(out)
    for c, title in enumerate(titles):
        draw.text((c * tw + 6, 4), title, fill=TEXT, font=font(14))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            resample = Image.NEAREST if c in nearest else Image.BILINEAR
            pic = Image.fromarray(np.ascontiguousarray(img)).resize((tw, th), resample)
            out.paste(pic, (c * tw, header + r * th))
        if r < len(notes) and notes[r]:
            f = font(13)
            x, y = 4, header + r * th + 4
            box = draw.textbbox((x + 4, y + 2), notes[r], font=f)
            draw.rectangle([x, y, box[2] + 4, box[3] + 3], fill=(0, 0, 0))
            draw.text((x + 4, y + 2), notes[r], fill=TEXT, font=f)
    top = header + th * len(rows) + 8
    for i, bar in enumerate(bars):
        draw_color_bar(draw, out, bar, (12 + i * (tw + 40), top), (tw, 14))
    legend_x = 12 + len(bars) * (tw + 40)
    draw_legend(draw, legend, (legend_x, top))
    for i, line in enumerate(caption):
        draw.text((12, top + 58 + 18 * i), line, fill=TEXT, font=font(14))
    return out


def demo_sheet(kept: list[dict], summary: dict) -> Image.Image:
    """The demo's grid.png from its kept frames (dicts of the arrays the demo received and
    the frame's scores) and its summary.json figures: one row per kept frame; depth on one
    shared colour scale with its bar in metres, the relative-error map on its own bar, the
    class legend with each class's IoU and the run's figures written underneath."""
    n = len(CLASS_NAMES)
    vmin, vmax = nice_range([k["gt"] for k in kept])
    rows = [[k["image"], depth_rgb(k["pred"], vmin, vmax), depth_rgb(k["gt"], vmin, vmax),
             error_rgb(k["pred"], k["gt"]), k["overlay"], class_rgb(k["labels_gt"], n),
             k["cloud"]] for k in kept]
    titles = ["input (camera)", "predicted depth", "ground-truth depth",
              "relative error |pred - gt| / gt", "predicted classes (node overlay)",
              "ground-truth classes", "point cloud by predicted class"]
    notes = [f"frame {k['index'] + 1}: AbsRel {k['abs_rel']:.3f}, mIoU {k['miou']:.2f}"
             for k in kept]
    bars = [ColorBar("depth (m), predicted and ground truth", vmin, vmax, DEPTH_CMAP,
                     ticks(vmin, vmax, 8)),
            ColorBar("relative error |pred - gt| / gt", 0.0, ERROR_MAX, ERROR_CMAP,
                     ticks(0.0, ERROR_MAX, 4), clipped_top=True)]
    colors = class_colors(n)
    iou = summary["iou"]
    legend = [(name, tuple(colors[c]), "n/a" if iou[name] is None else f"{iou[name]:.2f}")
              for c, name in CLASS_NAMES.items()]
    setup, d, rates = summary["setup"], summary["depth"], summary["model_fps"]
    fps = "n/a" if summary["fps"] is None else f"{summary['fps']:.1f}"
    surface = summary["point_to_surface_median_m"]
    surface = "n/a" if surface is None else f"{surface:.3f} m"
    caption = [
        f"{summary['frames']} frames of held-out world {setup['seed']} at {setup['width']}x"
        f"{setup['height']}, camera {setup['rate_hz']:g} Hz -> dpt_node over DDS: {fps} "
        f"frames/s with both models (latency p50 {summary['latency_ms']['p50']:.0f} ms); "
        f"each model alone: depth {rates.get('depth', 0):.1f}, segmentation "
        f"{rates.get('segmentation', 0):.1f} frames/s",
        f"depth AbsRel {d['abs_rel']:.3f} (at depth edges {d['abs_rel_edges']:.3f}), RMSE "
        f"{d['rmse']:.3f} m, delta<1.25 {d['delta1']:.4f} (means over frames); mIoU "
        f"{summary['miou']:.3f} (pooled over frames); published points to the true surfaces: "
        f"median {surface}",
    ]
    return sheet(rows, titles, notes, bars, legend, caption, nearest=frozenset({5}))

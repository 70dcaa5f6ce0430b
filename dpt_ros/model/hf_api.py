"""The transformers-shaped surface of the package (the seed's examples run with
`from dpt_ros.model import ...`): `from_pretrained` / `save_pretrained` on models and image
processors, processors callable as `processor(images=..., return_tensors="pt")`,
and the `return_dict` / `output_*` flag rules of model forwards (`AutoImageProcessor`,
which must know every processor class, is in `auto`).

Everything here delegates to the project's own API (`checkpoint.load_as`, `save_model`,
`preprocess`); it only adapts names and call shapes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dpt_ros.model.checkpoint import load_as, load_processor_config, save_model
from dpt_ros.model.errors import ModelLoadError

Source = str | os.PathLike[str]


def flag(value: bool | None) -> bool:
    """transformers' None means 'the config default'; ours are all off."""
    return bool(value)


def finish(output: Any, return_dict: bool | None) -> Any:
    """The record, or its tuple form when return_dict is False (transformers' rule)."""
    return output.to_tuple() if return_dict is False else output


def reject_labels(labels: Any) -> None:
    """Depth models take no labels in the reference either."""
    if labels is not None:
        raise NotImplementedError("Training is not implemented yet")


def _dtype(dtype: Any) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"dtype {dtype!r} is not a torch dtype")
        return value
    return dtype


class PretrainedModel:
    """from_pretrained / save_pretrained for the model classes (a mixin before nn.Module).

    A class names its config class (`config_class`, whose `model_types` say which
    config.json files it reads) and, like transformers, the attribute its base model sits
    under (`base_model_prefix`), which lets a bare DPTModel checkpoint seed a task model."""

    config_class: ClassVar[type]
    base_model_prefix: ClassVar[str | None] = None

    @classmethod
    def shares_weights_with(cls, config: Any) -> bool:
        """Whether from_pretrained may load the shared part of a checkpoint of another class
        (`config.architecture`); none by default."""
        return False

    @classmethod
    def from_pretrained(
        cls,
        source: Source,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        torch_dtype: torch.dtype | str | None = None,
        revision: str | None = None,
    ) -> Any:
        """This class loaded from a model directory or Hub repo id, in eval mode (as
        transformers returns it). A checkpoint of another class of the same DPT family
        (e.g. DPTModel from a DPTForDepthEstimation checkpoint) loads its shared weights as
        transformers does; what the checkpoint lacks keeps its fresh initialisation and a
        warning names it."""
        return load_as(cls, source, device=device, dtype=_dtype(dtype or torch_dtype),
                       revision=revision)

    def save_pretrained(self, directory: Source) -> Path:
        """config.json + model.safetensors (transformers and load_model read it)."""
        return save_model(self, directory)


class BatchFeature(dict):
    """A dict of model inputs with attribute access and `.to(...)`, like transformers'."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def to(self, *args: Any, **kwargs: Any) -> BatchFeature:
        """Tensors moved / cast (floating ones only take a dtype), in place; returns self."""
        for key, value in self.items():
            if not isinstance(value, torch.Tensor):
                continue
            if value.is_floating_point():
                self[key] = value.to(*args, **kwargs)
            else:
                devices = [a for a in (*args, kwargs.get("device"))
                           if isinstance(a, (str, torch.device))]
                self[key] = value.to(devices[0]) if devices else value
        return self


def _is_pil(image: Any) -> bool:
    return hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size")


def _as_hwc_uint8(image: Any, batch: bool = False) -> np.ndarray | torch.Tensor:
    """One image as uint8 (H, W, 3): PIL images (converted to RGB), numpy / torch arrays in
    HWC or CHW layout (channels first when the first axis is 3 and the last is not). With
    `batch`, a 4-D array of such images, by the same rule: (B, H, W, 3), a view."""
    if _is_pil(image):
        # a copy: Pillow's buffer is read-only, which torch.from_numpy warns about
        return np.array(image if image.mode == "RGB" else image.convert("RGB"))
    if not isinstance(image, (np.ndarray, torch.Tensor)):
        image = np.asarray(image)
    if image.dtype not in (np.uint8, torch.uint8):
        raise TypeError(f"images must be uint8 RGB (or PIL images), got dtype {image.dtype}; "
                        "float images are not accepted (they would be rescaled twice)")
    lead = 1 if batch else 0
    if image.ndim == 3 + lead and image.shape[lead] == 3 and image.shape[-1] != 3:
        order = (0, 2, 3, 1) if batch else (1, 2, 0)
        image = image.permute(*order) if isinstance(image, torch.Tensor) else image.transpose(
            *order)
    return image


def _image_list(images: Any) -> list[np.ndarray | torch.Tensor]:
    if _is_pil(images) or (isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 3):
        return [_as_hwc_uint8(images)]
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        return [_as_hwc_uint8(im) for im in images]
    if isinstance(images, Iterable) and not isinstance(images, (str, bytes)):
        out = [_as_hwc_uint8(im) for im in images]
        if out:
            return out
    raise ValueError("images must be a PIL image, an (H,W,3) / (3,H,W) uint8 array or "
                     "tensor, or a non-empty list of them")


class ImageProcessorAPI:
    """transformers' image-processor surface for our frozen-dataclass processors (a mixin;
    the class provides `from_dict`, `to_dict` and `preprocess`)."""

    def __hash__(self) -> int:
        """The hash of the canonical config (fields such as `size` are dicts). A frozen
        dataclass replaces an inherited __hash__: each one sets `__hash__ = this`."""
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __call__(self, images: Any = None, return_tensors: str | None = None,
                 device: str | torch.device | None = None, **overrides: Any) -> BatchFeature:
        """{'pixel_values': ...} for one image or a list: a (B,3,H,W) float32 tensor with
        return_tensors="pt", a numpy array with "np", a list of (3,H,W) arrays with None.
        Keyword overrides of config fields (e.g. do_resize=False) apply to this call only.
        Images of different sizes are processed one by one (then they must come out the
        same size to be stacked, as in transformers)."""
        if images is None:
            raise ValueError("images must be given")
        if return_tensors not in (None, "pt", "np"):
            raise ValueError(f"return_tensors={return_tensors!r}; accepted: 'pt', 'np', None")
        proc = self.with_options(overrides)
        batch = None  # the (B,3,H,W) result when the images go through as one batch
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4 and len(images):
            frames = _as_hwc_uint8(images, batch=True)
            if isinstance(frames, np.ndarray) and not frames.flags.writeable:
                frames = frames.copy()  # torch wraps numpy arrays: it wants writable ones
            batch = proc.preprocess(frames, device=device)
            values = list(batch)
        else:
            items = _image_list(images)
            if len({tuple(im.shape) for im in items}) == 1:
                batch = proc.preprocess(items if len(items) > 1 else items[0], device=device)
                values = list(batch)
            else:
                values = [proc.preprocess(im, device=device)[0] for im in items]
        if return_tensors is None:
            return BatchFeature(pixel_values=[v.cpu().numpy() for v in values])
        if batch is None:
            sizes = {tuple(v.shape) for v in values}
            if len(sizes) > 1:
                raise ValueError(f"images of different sizes processed to {sorted(sizes)}: "
                                 "they cannot be stacked into one tensor; pass them one at a "
                                 "time")
            batch = torch.stack(values)
        return BatchFeature(pixel_values=batch if return_tensors == "pt"
                            else batch.cpu().numpy())

    def with_options(self, overrides: dict[str, Any]) -> Any:
        if not overrides:
            return self
        known = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown processor options {unknown}; known: {sorted(known)}")
        return type(self).from_dict({**self.to_dict(), **overrides})

    @classmethod
    def from_pretrained(cls, source: Source, revision: str | None = None,
                        **overrides: Any) -> Any:
        """This processor from preprocessor_config.json of a directory or Hub repo id."""
        try:
            return cls.from_dict({**load_processor_config(source, revision), **overrides})
        except (ValueError, TypeError) as e:
            raise ModelLoadError(f"{source}: preprocessor_config.json: {e}") from e

    def save_pretrained(self, directory: Source) -> Path:
        """preprocessor_config.json (transformers reads it back)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "preprocessor_config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


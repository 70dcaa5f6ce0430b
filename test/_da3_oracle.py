"""The official Depth Anything 3 package as a test oracle (never a runtime dependency).

Where it lives: $DPT_ROS_DA3_ORACLE, else `.oracles/da3` (what `make oracles` installs:
depth-anything-3 0.1.1 with --no-deps, plus einops, addict, omegaconf, antlr4 and
opencv-python-headless). `oracle()` returns the imported modules or skips the test with
the reason. torchvision (which the official input processor imports for ToTensor and
Normalize only) is too heavy to pin to this torch build; when it is absent a stand-in
with torchvision's definitions of those two transforms is registered, and only for the
input-processor test.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from _model_util import randomize
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
# A small network of the DA3METRIC / DA3MONO skeleton (the official code builds vits..vitg).
SMALL_NET = {"name": "vits", "out_layers": [2, 5, 8, 11], "alt_start": -1,
             "qknorm_start": -1, "rope_start": -1, "cat_token": False}
SMALL_HEAD = {"dim_in": 384, "output_dim": 1, "features": 64,
              "out_channels": [48, 96, 192, 384]}


def oracle_dir() -> Path:
    env = os.environ.get("DPT_ROS_DA3_ORACLE")
    return Path(env) if env else ROOT / ".oracles" / "da3"


def oracle() -> types.SimpleNamespace:
    """The official network classes, or pytest.skip saying why they are not available."""
    path = oracle_dir()
    if not (path / "depth_anything_3").is_dir():
        pytest.skip(f"official depth-anything-3 not installed at {path} (run `make oracles` "
                    "or set DPT_ROS_DA3_ORACLE)")
    if str(path) not in sys.path:
        sys.path.append(str(path))
    try:
        da3 = importlib.import_module("depth_anything_3.model.da3")
        dinov2 = importlib.import_module("depth_anything_3.model.dinov2.dinov2")
        dpt = importlib.import_module("depth_anything_3.model.dpt")
    except ImportError as e:
        pytest.skip(f"official depth-anything-3 at {path} does not import: {e}")
    return types.SimpleNamespace(Net=da3.DepthAnything3Net, DinoV2=dinov2.DinoV2, DPT=dpt.DPT)


def input_processor() -> object:
    """The official InputProcessor (cv2 resizing), torchvision stood in for if absent."""
    oracle()
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        _torchvision_stand_in()
    try:
        module = importlib.import_module("depth_anything_3.utils.io.input_processor")
    except ImportError as e:
        pytest.skip(f"official input processor does not import: {e}")
    return module.InputProcessor()


def _torchvision_stand_in() -> None:
    """torchvision.transforms.ToTensor / Normalize as torchvision defines them."""

    class ToTensor:
        def __call__(self, pic):  # HWC uint8 -> CHW float32 / 255
            return torch.from_numpy(np.array(pic)).permute(2, 0, 1).contiguous().float().div(255)

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, t):
            mean = torch.as_tensor(self.mean, dtype=t.dtype)[:, None, None]
            std = torch.as_tensor(self.std, dtype=t.dtype)[:, None, None]
            return t.sub(mean).div(std)

    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor, transforms.Normalize, transforms.CenterCrop = ToTensor, Normalize, None
    package = types.ModuleType("torchvision")
    package.transforms = transforms
    sys.modules.setdefault("torchvision", package)
    sys.modules.setdefault("torchvision.transforms", transforms)


class _Api(nn.Module):
    """The official `DepthAnything3` wrapper's layout: the network under `model.`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.model = net


def official_network(net: dict | None = None, head: dict | None = None, seed: int = 0
                     ) -> nn.Module:
    """The official DepthAnything3Net with every parameter random, in eval mode."""
    o = oracle()
    torch.manual_seed(seed)
    model = o.Net(net=o.DinoV2(**(net or SMALL_NET)), head=o.DPT(**(head or SMALL_HEAD)))
    return randomize(model.eval(), seed)


def save_official(model: nn.Module, directory: Path, model_name: str = "da3metric-large",
                  net: dict | None = None, head: dict | None = None) -> Path:
    """The Hub layout of an official DA3 repo: config.json (model_name, plus the network
    keys for a non-preset size) + model.safetensors of `DepthAnything3.state_dict()`."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_name": model_name}
    if net is not None:
        config["net"] = net
    if head is not None:
        config["head"] = head
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    state = {k: v.contiguous() for k, v in _Api(model).state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def official_outputs(model: nn.Module, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """The official network's head outputs for (B, 3, H, W): depth and sky (B, H, W),
    before `_process_mono_sky_estimation` (which fills sky with a sampled quantile)."""
    x = pixel_values[:, None]  # (B, N=1 view, 3, H, W)
    h, w = pixel_values.shape[-2:]
    with torch.no_grad():
        feats, _ = model.backbone(x, cam_token=None, export_feat_layers=[])
        out = model._process_depth_head(feats, h, w)
        full = model(x)
    return {"depth": out.depth[:, 0], "sky": out.sky[:, 0], "full_depth": full.depth[:, 0]}

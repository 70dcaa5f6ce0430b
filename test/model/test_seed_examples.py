"""The seed's examples, run as written, twice: with `from transformers import ...` (the
oracle) and with `from dpt_ros.model import ...`. The only other edits: Hub ids become local
directories saved by transformers (tiny random-weight checkpoints in the Hub layout) and the
web image a local one. Their outputs must agree."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _model_util import assert_close, randomize, tiny_vit

T = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

# --- the seed's snippets, verbatim (transformers' DPT documentation and model cards) -------

CONFIG_EXAMPLE = '''
from transformers import DPTConfig, DPTModel

# Initializing a DPT dpt-large style configuration
configuration = DPTConfig()

# Initializing a model from the dpt-large style configuration
model = DPTModel(configuration)

# Accessing the model configuration
configuration = model.config
'''

FEATURES_EXAMPLE = '''
from transformers import AutoImageProcessor, DPTModel
import torch
from PIL import Image
import requests

url = "http://images.cocodataset.org/val2017/000000039769.jpg"
image = Image.open(requests.get(url, stream=True).raw)

image_processor = AutoImageProcessor.from_pretrained("Intel/dpt-large")
model = DPTModel.from_pretrained("Intel/dpt-large")

inputs = image_processor(image, return_tensors="pt")

with torch.no_grad():
    outputs = model(**inputs)

last_hidden_states = outputs.last_hidden_state
'''

DEPTH_EXAMPLE = '''
from transformers import DPTImageProcessor, DPTForDepthEstimation
import torch
import numpy as np
from PIL import Image
import requests

url = "http://images.cocodataset.org/val2017/000000039769.jpg"
image = Image.open(requests.get(url, stream=True).raw)

processor = DPTImageProcessor.from_pretrained("Intel/dpt-large")
model = DPTForDepthEstimation.from_pretrained("Intel/dpt-large")

# prepare image for the model
inputs = processor(images=image, return_tensors="pt")

with torch.no_grad():
    outputs = model(**inputs)
    predicted_depth = outputs.predicted_depth

# interpolate to original size
prediction = torch.nn.functional.interpolate(
    predicted_depth.unsqueeze(1),
    size=image.size[::-1],
    mode="bicubic",
    align_corners=False,
)

# visualize the prediction
output = prediction.squeeze().cpu().numpy()
formatted = (output * 255 / np.max(output)).astype("uint8")
depth = Image.fromarray(formatted)
depth.save("depth.png")
'''

SEGMENTATION_EXAMPLE = '''
from transformers import DPTImageProcessor, DPTForSemanticSegmentation
import torch
from PIL import Image
import requests

url = "http://images.cocodataset.org/val2017/000000039769.jpg"
image = Image.open(requests.get(url, stream=True).raw)

processor = DPTImageProcessor.from_pretrained("Intel/dpt-large-ade")
model = DPTForSemanticSegmentation.from_pretrained("Intel/dpt-large-ade")

inputs = processor(images=image, return_tensors="pt")

outputs = model(**inputs)
logits = outputs.logits

prediction = torch.nn.functional.interpolate(
    logits,
    size=image.size[::-1],  # (height, width)
    mode="bicubic",
    align_corners=False,
)
prediction = torch.argmax(prediction, dim=1) + 1
prediction = prediction.squeeze()
prediction = prediction.cpu().numpy()
'''

WEB_IMAGE = 'image = Image.open(requests.get(url, stream=True).raw)'
# The Pillow-based processor is the one ours reproduces bit for bit; where torchvision is
# installed transformers would default to its torchvision backend (a grey level off), so the
# reference run is then pointed at the Pillow one.
TORCHVISION = importlib.util.find_spec("torchvision") is not None


def _edit(snippet: str, ours: bool, repos: dict[str, Path], image: Path, out: Path) -> str:
    """The two edits the task allows, plus the import swap for our run."""
    text = snippet.replace(WEB_IMAGE, f"image = Image.open({str(image)!r})")
    text = text.replace("import requests\n", "").replace('url = "http://images.cocodataset'
                                                          '.org/val2017/000000039769.jpg"\n',
                                                          "")
    for repo, path in repos.items():
        text = text.replace(f'"{repo}"', repr(str(path)))
    text = text.replace('"depth.png"', repr(str(out / "depth.png")))
    if ours:
        return text.replace("from transformers import", "from dpt_ros.model import")
    if TORCHVISION:
        text = text.replace("DPTImageProcessor.from_pretrained(",
                            "DPTImageProcessorPil.from_pretrained(")
        text = text.replace("import DPTImageProcessor,", "import DPTImageProcessorPil,")
        text = re.sub(r"AutoImageProcessor\.from_pretrained\(([^)]*)\)",
                      r'AutoImageProcessor.from_pretrained(\1, backend="pil")', text)
    return text


def _run(snippet: str, ours: bool, repos: dict[str, Path], image: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    namespace: dict = {}
    exec(compile(_edit(snippet, ours, repos, image, out), "<seed example>", "exec"), namespace)
    made = {name: type(v).__module__ for name, v in namespace.items()
            if name in ("model", "processor", "image_processor", "configuration", "inputs")}
    prefix = "dpt_ros." if ours else "transformers."
    assert made and all(m.startswith(prefix) for m in made.values()), made
    return namespace


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """Intel/dpt-large and Intel/dpt-large-ade as tiny transformers checkpoints (same
    classes, processor config as on the Hub but 64x64), and a 640x480 photo-like image."""
    root = tmp_path_factory.mktemp("seed")
    proc = T.DPTImageProcessorPil(size={"height": 64, "width": 64}, resample=2,
                                  keep_aspect_ratio=False, ensure_multiple_of=1)
    repos = {"Intel/dpt-large": root / "dpt-large", "Intel/dpt-large-ade": root / "dpt-ade"}
    depth = randomize(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit()))).eval()
    with torch.no_grad():  # lift the last conv above its ReLU: a depth map with content
        depth.head.head[4].bias.fill_(0.3)
    depth.save_pretrained(str(repos["Intel/dpt-large"]))
    labels = {i: f"class{i}" for i in range(5)}
    seg = T.DPTForSemanticSegmentation(T.DPTConfig(**tiny_vit(
        id2label=labels, label2id={v: k for k, v in labels.items()},
        use_batch_norm_in_fusion_residual=True)))
    randomize(seg, seed=1).eval().save_pretrained(str(repos["Intel/dpt-large-ade"]))
    for path in repos.values():
        proc.save_pretrained(str(path))
    yy, xx = np.mgrid[0:480, 0:640]
    rgb = np.stack([255 * xx / 640, 255 * yy / 480, 128 + 100 * np.sin(xx / 23 + yy / 31)], -1)
    rgb += np.random.default_rng(0).normal(0, 12, rgb.shape)
    image = root / "cats.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(image)
    return repos, image, root


def test_config_example(seed, tmp_path):
    repos, image, _ = seed
    ref = _run(CONFIG_EXAMPLE, False, repos, image, tmp_path / "ref")
    ours = _run(CONFIG_EXAMPLE, True, repos, image, tmp_path / "ours")
    assert type(ours["model"]).__module__.startswith("dpt_ros.model")
    # as config.json holds them (JSON: tuples are lists, label ids strings)
    want = json.loads(json.dumps(ref["configuration"].to_dict()))
    got = json.loads(json.dumps(ours["configuration"].to_dict()))
    shared = set(got) & set(want) - {"architectures", "transformers_version"}
    assert len(shared) > 30
    assert {k: got[k] for k in shared} == {k: want[k] for k in shared}
    n_ref = sum(p.numel() for p in ref["model"].parameters())
    assert sum(p.numel() for p in ours["model"].parameters()) == n_ref
    assert set(ours["model"].state_dict()) == set(ref["model"].state_dict())


def test_feature_extraction_example(seed, tmp_path):
    repos, image, _ = seed
    ref = _run(FEATURES_EXAMPLE, False, repos, image, tmp_path / "ref")
    ours = _run(FEATURES_EXAMPLE, True, repos, image, tmp_path / "ours")
    assert torch.equal(ours["inputs"]["pixel_values"], ref["inputs"]["pixel_values"])
    assert_close(ours["last_hidden_states"], ref["last_hidden_states"])


def test_depth_example_with_png(seed, tmp_path):
    repos, image, _ = seed
    ref = _run(DEPTH_EXAMPLE, False, repos, image, tmp_path / "ref")
    ours = _run(DEPTH_EXAMPLE, True, repos, image, tmp_path / "ours")
    assert torch.equal(ours["inputs"].pixel_values, ref["inputs"].pixel_values)
    assert ours["prediction"].shape == (1, 1, 480, 640)
    assert_close(ours["prediction"], ref["prediction"])
    png_ref = np.asarray(Image.open(tmp_path / "ref" / "depth.png"))
    png_ours = np.asarray(Image.open(tmp_path / "ours" / "depth.png"))
    assert png_ours.shape == png_ref.shape == (480, 640) and png_ours.dtype == np.uint8
    diff = np.abs(png_ours.astype(int) - png_ref.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # uint8 rounding of ~1e-6 apart
    assert png_ref.std() > 5, "flat depth image: weak test"


def test_segmentation_example(seed, tmp_path):
    repos, image, _ = seed
    ref = _run(SEGMENTATION_EXAMPLE, False, repos, image, tmp_path / "ref")
    ours = _run(SEGMENTATION_EXAMPLE, True, repos, image, tmp_path / "ours")
    assert_close(ours["logits"], ref["logits"])
    assert ours["prediction"].shape == ref["prediction"].shape == (480, 640)
    assert (ours["prediction"] == ref["prediction"]).mean() > 0.999
    assert len(np.unique(ref["prediction"])) > 1, "one class everywhere: weak test"

"""DPTImageProcessor (torch) against transformers' Pillow-based `DPTImageProcessorPil`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import PIL
import pytest
import torch

pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from transformers import DPTImageProcessorPil
from transformers.models.dpt.image_processing_pil_dpt import (
    get_resize_output_image_size,
)

from dpt_ros.model import pillow_resize
from dpt_ros.model.dpt.image_processing import DPTImageProcessor

# The preprocessor_config.json files of the checkpoints in use (meta keys included).
CONFIGS = {
    "dpt384": {  # Intel/dpt-large, Intel/dpt-hybrid-midas (legacy int size)
        "feature_extractor_type": "DPTFeatureExtractor", "do_resize": True, "size": 384,
        "keep_aspect_ratio": False, "ensure_multiple_of": 1, "resample": 2, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    },
    "depth_anything518": {  # LiheYoung/depth-anything-*, depth-anything/*-hf
        "image_processor_type": "DPTImageProcessor", "do_resize": True,
        "size": {"height": 518, "width": 518}, "keep_aspect_ratio": True,
        "ensure_multiple_of": 14, "resample": 3, "do_rescale": True,
        "rescale_factor": 0.00392156862745098, "do_normalize": True, "do_pad": False,
        "size_divisor": None, "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    },
    "dinov2_pad14": {  # facebook/dpt-dinov2-small-kitti
        "image_processor_type": "DPTImageProcessor", "do_resize": False,
        "size": {"height": 384, "width": 384}, "keep_aspect_ratio": False,
        "ensure_multiple_of": 1, "resample": 2, "do_rescale": False,
        "rescale_factor": 0.00392156862745098, "do_normalize": True, "do_pad": True,
        "size_divisor": 14, "image_mean": [123.675, 116.28, 103.53],
        "image_std": [58.395, 57.12, 57.375], "do_reduce_labels": False,
    },
}
# Other settings the processor supports: nearest, upsampling, other multiples.
EXTRA_CONFIGS = {
    "nearest_keep32": {"size": {"height": 500, "width": 500}, "keep_aspect_ratio": True,
                       "ensure_multiple_of": 32, "resample": 0},
    "bicubic_up": {"size": {"height": 400, "width": 600}, "resample": 3},
    "bilinear_up_pad": {"size": {"height": 300, "width": 450}, "resample": 2, "do_pad": True,
                        "size_divisor": 32},
}
SIZES = [(480, 640), (720, 1280), (333, 517)]
PORTRAIT = (1280, 720)  # Pillow 13 resizes this one vertical pass first for 384x384
META = {"feature_extractor_type", "image_processor_type"}
# The reference is Pillow as installed: before 13 it always resized horizontally first, and
# we reproduce 13's order (the test extra pins pillow>=13), so order-dependent cases need it.
PILLOW_13 = int(PIL.__version__.split(".")[0]) >= 13
# Measured max |Δ| against DPTImageProcessorPil is exactly 0 for every config and size (the
# resize reproduces Pillow's fixed-point arithmetic); the bound only leaves float-print slack.
TOLERANCE = 1e-6


def natural_image(height: int, width: int, seed: int) -> np.ndarray:
    """Gradients, a shaded disc, a flat box and a hard edge, with noise on the lower half."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = xx / width, yy / height
    img = np.stack([255 * u, 255 * v, 128 + 90 * np.sin(9 * u + seed) * np.cos(7 * v)], -1)
    disc = (u - 0.3) ** 2 + (v - 0.5) ** 2 < 0.04
    img[disc] = np.stack([220 - 150 * v, 40 + 100 * u, 60 + 0 * u], -1)[disc]
    img[height // 6: height // 2, width // 2: width // 2 + width // 5] = (12, 200, 60)
    img[:, (7 * width) // 8:] = 255 - img[:, (7 * width) // 8:]
    img[height // 2:] += rng.normal(0, 10, img[height // 2:].shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def oracle(config: dict) -> DPTImageProcessorPil:
    return DPTImageProcessorPil(**{k: v for k, v in config.items() if k not in META})


def reference(config: dict, images: list[np.ndarray]) -> torch.Tensor:
    return oracle(config)(images, return_tensors="pt",
                          input_data_format="channels_last")["pixel_values"]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(CONFIGS) + list(EXTRA_CONFIGS))
def test_preprocess_matches_pil(name: str, size: tuple[int, int]) -> None:
    config = CONFIGS.get(name) or EXTRA_CONFIGS[name]
    image = natural_image(*size, seed=len(name))
    ref = reference(config, [image])
    ours = DPTImageProcessor.from_dict(config).preprocess(image)
    assert ours.dtype == torch.float32 and ours.is_contiguous()
    assert ours.shape == ref.shape
    diff = (ours - ref.float()).abs()
    assert diff.max().item() <= TOLERANCE, (diff.max().item(), diff.mean().item())


def test_no_resize_is_exact() -> None:
    """Config 3 does no resampling at all: bit-identical, padding placement included."""
    config = CONFIGS["dinov2_pad14"]
    image = natural_image(331, 517, seed=3)
    ref = reference(config, [image])
    ours = DPTImageProcessor.from_dict(config).preprocess(image)
    assert torch.equal(ours, ref)
    assert ours.shape[-2:] == (336, 518)  # 5 rows: 2 above, 3 below; 1 column right
    assert torch.all(ours[..., :2, :] == 0) and torch.all(ours[..., -3:, :] == 0)
    assert torch.all(ours[..., -1] == 0) and torch.all(ours[..., 2:-3, 0] != 0)


def test_random_resizes_match_pil_exactly() -> None:
    """Uniform noise (worst case for rounding ties), random sizes up and down, each filter."""
    rng = np.random.default_rng(7)
    for trial in range(90):
        in_h, in_w, out_h, out_w = (int(v) for v in rng.integers(3, 120, 4))
        config = {"size": {"height": out_h, "width": out_w}, "resample": (0, 2, 3)[trial % 3]}
        image = rng.integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)
        if not PILLOW_13 and pillow_resize.vertical_pass_first(in_h, in_w, out_h, out_w):
            continue
        ours = DPTImageProcessor.from_dict(config).preprocess(image)
        assert torch.equal(ours, reference(config, [image])), (trial, in_h, in_w, config)


@pytest.mark.skipif(not PILLOW_13, reason="the reference's pass order is Pillow 13's")
@pytest.mark.parametrize("name", list(CONFIGS))
def test_portrait_frame_matches_pil(name: str) -> None:
    """A portrait frame, where Pillow >= 13 takes the vertical pass first."""
    config = CONFIGS[name]
    image = natural_image(*PORTRAIT, seed=11)
    ours = DPTImageProcessor.from_dict(config).preprocess(image)
    assert torch.equal(ours, reference(config, [image]))


def test_large_downscale_matches_pil() -> None:
    """300x bicubic: too many taps for the float32 split, so the float64 matmul does it."""
    config = {"size": {"height": 3, "width": 10}, "resample": 3}
    image = natural_image(900, 3000, seed=4)
    ours = DPTImageProcessor.from_dict(config).preprocess(image)
    assert torch.equal(ours, reference(config, [image]))


def test_float64_path_matches_float32_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where float32 matmuls may not be IEEE (CUDA, TF32/bf16 settings) the passes run in
    float64: same levels, bit for bit, for both pass orders and all filters."""
    images = [natural_image(480, 640, seed=1), natural_image(*PORTRAIT, seed=2)]
    configs = [*CONFIGS.values(), *EXTRA_CONFIGS.values()]
    fast = [[DPTImageProcessor.from_dict(c).preprocess(i) for i in images] for c in configs]
    monkeypatch.setattr(pillow_resize, "_float32_is_exact", lambda device: False)
    for config, expected in zip(configs, fast):
        proc = DPTImageProcessor.from_dict(config)
        for image, out in zip(images, expected):
            assert torch.equal(proc.preprocess(image), out), config


def test_repeated_calls_reuse_no_stale_state() -> None:
    """Scratch buffers are kept between calls: alternating sizes and pass orders on one
    processor give what fresh processors give, and results never alias the buffers."""
    config = CONFIGS["depth_anything518"]
    proc = DPTImageProcessor.from_dict(config)
    sizes = [(240, 320), PORTRAIT, (240, 320), (333, 517), PORTRAIT, (333, 517)]
    outputs = []
    for seed, size in enumerate(sizes):
        image = natural_image(*size, seed=seed)
        out = proc.preprocess(image)
        assert torch.equal(out, DPTImageProcessor.from_dict(config).preprocess(image)), size
        outputs.append((out, out.clone()))
    for out, copy in outputs:
        assert torch.equal(out, copy)


def test_output_size_matches_reference_rounding() -> None:
    """Model input size, including Python's round-half-even ties, for many frame sizes."""
    rng = np.random.default_rng(0)
    sizes = [tuple(int(v) for v in s) for s in rng.integers(20, 2000, (250, 2))]
    # 707 / 14 = 50.5 and 721 / 14 = 51.5: ties that round half to even (700, 728).
    sizes += [(480, 640), (720, 1280), (1080, 1920), (259, 777), (7, 2000), (518, 707),
              (518, 721)]
    configs = [*CONFIGS.values(), *EXTRA_CONFIGS.values(),
               {"size": {"height": 392, "width": 644}, "keep_aspect_ratio": True,
                "ensure_multiple_of": 28, "do_pad": True, "size_divisor": 16}]
    for config in configs:
        proc = DPTImageProcessor.from_dict(config)
        ref = oracle(config)
        for h, w in sizes:
            expected = (h, w)
            if ref.do_resize:
                out = get_resize_output_image_size(np.empty((0, h, w)), (ref.size.height,
                                                   ref.size.width), ref.keep_aspect_ratio,
                                                   ref.ensure_multiple_of)
                expected = (out.height, out.width)
            if ref.do_pad and ref.size_divisor:
                expected = tuple(-(-v // ref.size_divisor) * ref.size_divisor for v in expected)
            if 0 in expected:  # the reference would produce an empty image
                with pytest.raises(ValueError, match="empty"):
                    proc.output_size(h, w)
            else:
                assert proc.output_size(h, w) == expected, (config, h, w)
    depth_anything = DPTImageProcessor.from_dict(CONFIGS["depth_anything518"])
    assert depth_anything.output_size(518, 707) == (518, 700)
    assert depth_anything.output_size(518, 721) == (518, 728)
    for config in configs:
        proc = DPTImageProcessor.from_dict(config)
        for h, w in [(97, 131), (259, 777)]:
            shape = proc.preprocess(np.zeros((h, w, 3), np.uint8)).shape
            assert shape[-2:] == proc.output_size(h, w)


def test_batched_inputs_agree() -> None:
    """(B,H,W,3) numpy, torch, lists and single images give identical batches = oracle's."""
    proc = DPTImageProcessor.from_dict(CONFIGS["depth_anything518"])
    images = [natural_image(240, 320, seed=s) for s in range(3)]
    batch = np.stack(images)
    from_numpy = proc.preprocess(batch)
    assert from_numpy.shape == (3, 3, 392, 518)
    assert torch.equal(proc.preprocess(torch.from_numpy(batch)), from_numpy)
    assert torch.equal(proc.preprocess(images), from_numpy)
    assert torch.equal(proc.preprocess([torch.from_numpy(i) for i in images]), from_numpy)
    singles = torch.cat([proc.preprocess(i) for i in images])
    assert torch.equal(singles, from_numpy)
    assert torch.equal(from_numpy, reference(CONFIGS["depth_anything518"], images))
    channels_last_view = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).permute(0, 2, 3, 1)
    assert torch.equal(proc.preprocess(channels_last_view), from_numpy)


def test_call_on_a_batch_array_matches_per_image_calls() -> None:
    """processor(images=4-D array) goes through as one batch; the same values, dtype and
    layout as the images one by one (and the oracle), channels last or first, numpy or torch,
    read-only numpy included (without torch's non-writable warning)."""
    import warnings

    config = CONFIGS["depth_anything518"]
    proc = DPTImageProcessor.from_dict(config)
    images = [natural_image(120, 160, seed=s) for s in range(3)]
    singles = torch.cat([proc(images=i, return_tensors="pt")["pixel_values"] for i in images])
    assert torch.equal(singles, reference(config, images))
    batch = np.stack(images)
    frozen = batch.copy()
    frozen.flags.writeable = False
    chw = batch.transpose(0, 3, 1, 2)
    for given in (batch, torch.from_numpy(batch), frozen, chw, np.ascontiguousarray(chw),
                  torch.from_numpy(np.ascontiguousarray(chw)), list(batch)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = proc(images=given, return_tensors="pt")["pixel_values"]
            as_np = proc(images=given, return_tensors="np")["pixel_values"]
            as_list = proc(images=given)["pixel_values"]
        assert got.dtype == torch.float32 and got.is_contiguous()
        assert torch.equal(got, singles)
        assert isinstance(as_np, np.ndarray) and np.array_equal(as_np, singles.numpy())
        assert len(as_list) == 3
        assert all(np.array_equal(a, b) for a, b in zip(as_list, singles.numpy()))
    assert np.array_equal(batch, np.stack(images))  # the input is left alone
    with pytest.raises(TypeError, match="uint8"):
        proc(images=batch.astype(np.float32), return_tensors="pt")
    with pytest.raises(ValueError, match="RGB"):
        proc(images=np.zeros((2, 8, 8, 4), np.uint8), return_tensors="pt")


def test_device_argument_and_tensor_device() -> None:
    proc = DPTImageProcessor.from_dict(CONFIGS["dpt384"])
    image = torch.from_numpy(natural_image(64, 80, seed=1))
    assert proc.preprocess(image).device.type == "cpu"
    assert proc.preprocess(image.numpy(), device="cpu").device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_exactly() -> None:
    """The integer resize and the lookup table are exact on the GPU too."""
    for config in [*CONFIGS.values(), *EXTRA_CONFIGS.values()]:
        proc = DPTImageProcessor.from_dict(config)
        batch = np.stack([natural_image(480, 640, seed=s) for s in range(2)])
        on_gpu = torch.from_numpy(batch).cuda()
        out = proc.preprocess(on_gpu)
        assert out.device.type == "cuda"
        assert torch.equal(out.cpu(), proc.preprocess(batch))
        assert proc.preprocess(batch, device="cuda").device.type == "cuda"


def test_rejects_bad_images() -> None:
    proc = DPTImageProcessor()
    with pytest.raises(TypeError, match="uint8"):
        proc.preprocess(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="RGB"):
        proc.preprocess(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="one size"):
        proc.preprocess([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)])


def test_defaults_match_transformers() -> None:
    ref = DPTImageProcessorPil().to_dict()
    ours = DPTImageProcessor().to_dict()
    for key, value in ours.items():
        if key in ref:
            expected = list(ref[key]) if isinstance(ref[key], tuple) else ref[key]
            assert value == expected, key


def test_dict_round_trip_and_transformers_reads_it() -> None:
    image = natural_image(150, 211, seed=5)
    for config in [*CONFIGS.values(), *EXTRA_CONFIGS.values()]:
        proc = DPTImageProcessor.from_dict(config)
        again = DPTImageProcessor.from_dict(proc.to_dict())
        assert again == proc and hash(again) == hash(proc)
        ref = DPTImageProcessorPil(**proc.to_dict())
        expected = ref(image, return_tensors="pt")["pixel_values"]
        assert torch.equal(proc.preprocess(image), expected)
    legacy = DPTImageProcessor.from_dict({"size": 384, "do_pad": None, "resample": None})
    assert legacy.size == {"height": 384, "width": 384}
    assert legacy.do_pad is False and legacy.resample == 3


@pytest.mark.parametrize(("field", "value"), [
    ("resample", 1), ("resample", 5), ("size", {"shortest_edge": 384}), ("size", 0),
    ("ensure_multiple_of", 0), ("image_mean", [0.5, 0.5]), ("image_std", [0.5, 0.0, 0.5]),
    ("size_divisor", 0), ("do_resize", "yes"), ("rescale_factor", -1.0),
    ("do_center_crop", True), ("image_processor_type", "ZoeDepthImageProcessor"),
])
def test_unsupported_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DPTImageProcessor.from_dict({**CONFIGS["depth_anything518"], field: value})


def test_resample_only_checked_when_resizing() -> None:
    proc = DPTImageProcessor.from_dict({**CONFIGS["dinov2_pad14"], "resample": 1})
    assert proc.preprocess(np.zeros((14, 28, 3), np.uint8)).shape == (1, 3, 14, 28)


@pytest.mark.parametrize("targets", [None, [(480, 640), (480, 640)], [(100, 120), (55, 77)],
                                     "tensor"])
def test_post_process_depth_matches_transformers(targets: object) -> None:
    depth = torch.rand(2, 37, 50, generator=torch.Generator().manual_seed(0)) * 10
    ref_targets = targets
    if targets == "tensor":  # transformers itself fails on a tensor here: give it the list
        ref_targets = [(74, 100), (30, 41)]
        targets = torch.tensor(ref_targets)
    outputs = SimpleNamespace(predicted_depth=depth)
    ref = DPTImageProcessorPil().post_process_depth_estimation(outputs, target_sizes=ref_targets)
    ours = DPTImageProcessor().post_process_depth_estimation(outputs, target_sizes=targets)
    assert len(ours) == len(ref) == 2
    for o, r in zip(ours, ref):
        assert o["predicted_depth"].shape == r["predicted_depth"].shape
        torch.testing.assert_close(o["predicted_depth"], r["predicted_depth"], rtol=0,
                                   atol=1e-5)


@pytest.mark.parametrize("targets", [None, [(96, 128), (96, 128)], [(50, 70), (33, 20)],
                                     "tensor"])
def test_post_process_segmentation_matches_transformers(targets: object) -> None:
    logits = torch.randn(2, 7, 24, 32, generator=torch.Generator().manual_seed(1))
    ref_targets = targets
    if targets == "tensor":  # transformers itself fails on a tensor here: give it the list
        ref_targets = [(48, 64), (100, 90)]
        targets = torch.tensor(ref_targets)
    outputs = SimpleNamespace(logits=logits)
    ref = DPTImageProcessorPil().post_process_semantic_segmentation(outputs,
                                                                   target_sizes=ref_targets)
    ours = DPTImageProcessor().post_process_semantic_segmentation(outputs, target_sizes=targets)
    assert len(ours) == len(ref) == 2
    for o, r in zip(ours, ref):
        assert o.dtype == torch.int64 and o.shape == r.shape
        assert torch.equal(o, r)


def test_post_process_rejects_wrong_number_of_sizes() -> None:
    outputs = SimpleNamespace(predicted_depth=torch.zeros(2, 4, 4), logits=torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="target sizes"):
        DPTImageProcessor().post_process_depth_estimation(outputs, [(8, 8)])
    with pytest.raises(ValueError, match="target sizes"):
        DPTImageProcessor().post_process_semantic_segmentation(outputs, [(8, 8)])

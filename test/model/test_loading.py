"""load_model / save_model / load_processor / resolve_source: weight layouts, dtypes, key
checks, the errors for every kind of bad source, and Hub resolution through a hand-built
Hugging Face cache (offline)."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import torch

T = pytest.importorskip("transformers", reason="transformers (the test oracle) is not installed")

from _model_util import assert_close, image, randomize, tiny_vit  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from dpt_ros.model import (  # noqa: E402
    DPTForDepthEstimation,
    DPTModel,
    ModelLoadError,
    load_model,
    load_processor,
    resolve_source,
    save_model,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def reference():
    """A tiny random DPT depth model (transformers) and its output on a fixed input."""
    ref = randomize(T.DPTForDepthEstimation(T.DPTConfig(**tiny_vit()))).eval()
    with torch.no_grad():
        return ref, ref(image(64, 64)).predicted_depth


@pytest.fixture
def checkpoint(tmp_path, reference):
    ref, _ = reference
    ref.save_pretrained(str(tmp_path / "ckpt"))
    return tmp_path / "ckpt"


def _out(model) -> torch.Tensor:
    with torch.no_grad():
        return model(image(64, 64).to(next(model.parameters()).dtype)).predicted_depth


def _edit_config(directory, **changes):
    path = directory / "config.json"
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


def _edit_weights(directory, edit):
    path = directory / "model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path), metadata={"format": "pt"})


# --- layouts, dtypes, round trips ----------------------------------------------------------


def test_safetensors_eval_mode_no_meta_tensors(checkpoint, reference):
    model = load_model(checkpoint)
    assert isinstance(model, DPTForDepthEstimation) and not model.training
    tensors = list(model.parameters()) + list(model.buffers())
    assert all(t.device.type == "cpu" and not t.is_meta for t in tensors)
    assert all(t.dtype == torch.float32 for t in model.parameters())
    assert_close(_out(model), reference[1])


def test_sharded_safetensors(tmp_path, reference):
    reference[0].save_pretrained(str(tmp_path), max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    assert_close(_out(load_model(tmp_path)), reference[1])


def test_pytorch_bin(tmp_path, reference):
    ref = reference[0]
    ref.config.save_pretrained(str(tmp_path))
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    assert_close(_out(load_model(tmp_path)), reference[1])


def test_half_checkpoint_loads_in_requested_dtype(tmp_path, reference):
    copy.deepcopy(reference[0]).to(torch.float16).save_pretrained(str(tmp_path))
    model = load_model(tmp_path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert_close(_out(model), reference[1], tol=5e-3)
    bf16 = load_model(tmp_path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())


def test_save_model_round_trip_and_transformers_reads_it(tmp_path, checkpoint, reference):
    ours = load_model(checkpoint)
    out = save_model(ours, tmp_path / "saved")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors"}
    assert_close(_out(load_model(out)), reference[1])
    back = T.AutoModelForDepthEstimation.from_pretrained(str(out)).eval()
    with torch.no_grad():
        assert_close(back(image(64, 64)).predicted_depth, reference[1])


def test_missing_batchnorm_counters_are_tolerated(tmp_path):
    """transformers does not insist on num_batches_tracked (unused at inference)."""
    cfg = T.DPTConfig(**tiny_vit(num_labels=3, use_batch_norm_in_fusion_residual=True))
    ref = randomize(T.DPTForSemanticSegmentation(cfg)).eval()
    ref.save_pretrained(str(tmp_path))
    _edit_weights(tmp_path, lambda s: [s.pop(k) for k in list(s) if "num_batches" in k])
    model = load_model(tmp_path)
    with torch.no_grad():
        assert_close(model(image(64, 64)).logits, ref(image(64, 64)).logits)


def test_base_model_prefix_is_added_or_stripped_like_transformers(tmp_path):
    ref = randomize(T.DPTModel(T.DPTConfig(**tiny_vit()))).eval()
    ref.save_pretrained(str(tmp_path))
    _edit_weights(tmp_path, lambda s: s.update({f"dpt.{k}": s.pop(k) for k in list(s)}))
    model = load_model(tmp_path)
    assert isinstance(model, DPTModel)
    with torch.no_grad():
        x = image(64, 64)
        assert_close(model(x).last_hidden_state, ref(x).last_hidden_state)


def test_task_filter(checkpoint, tmp_path):
    assert load_model(checkpoint, task="depth").config.task == "depth"
    with pytest.raises(ModelLoadError, match=r"depth checkpoint.*segmentation model"):
        load_model(checkpoint, task="segmentation")
    seg = T.DPTForSemanticSegmentation(T.DPTConfig(**tiny_vit(num_labels=3)))
    seg.save_pretrained(str(tmp_path / "seg"))
    with pytest.raises(ModelLoadError, match="segmentation checkpoint"):
        load_model(tmp_path / "seg", task="depth")
    with pytest.raises(ValueError, match="task="):
        load_model(checkpoint, task="normals")


# --- errors --------------------------------------------------------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere" / "model")


def test_missing_config(checkpoint):
    (checkpoint / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json not found"):
        load_model(checkpoint)


def test_corrupt_config(checkpoint):
    (checkpoint / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not valid JSON"):
        load_model(checkpoint)


def test_unknown_model_type(checkpoint):
    _edit_config(checkpoint, model_type="vit")
    with pytest.raises(ModelLoadError, match=r"config\.json.*model_type='vit'"):
        load_model(checkpoint)


def test_unknown_architecture(checkpoint):
    _edit_config(checkpoint, architectures=["DPTForImageClassification"])
    with pytest.raises(ModelLoadError, match="DPTForImageClassification"):
        load_model(checkpoint)


def test_missing_weights(checkpoint):
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"no weights in .*model\.safetensors"):
        load_model(checkpoint)


def test_missing_key(checkpoint):
    _edit_weights(checkpoint, lambda s: s.pop("neck.convs.2.weight"))
    with pytest.raises(ModelLoadError, match=r"missing keys: neck\.convs\.2\.weight"):
        load_model(checkpoint)


def test_unexpected_key(checkpoint):
    _edit_weights(checkpoint, lambda s: s.update({"head.extra.weight": torch.zeros(2)}))
    with pytest.raises(ModelLoadError, match=r"unexpected keys: head\.extra\.weight"):
        load_model(checkpoint)


def test_shape_mismatch(checkpoint):
    _edit_config(checkpoint, neck_hidden_sizes=[8, 16, 24, 40])
    key = re.escape("neck.reassemble_stage.layers.3.projection.weight")
    shapes = re.escape("checkpoint (32, 32, 1, 1) vs model (40, 32, 1, 1)")
    with pytest.raises(ModelLoadError, match=f"shape mismatch: {key}: {shapes}"):
        load_model(checkpoint)


def test_corrupt_safetensors(checkpoint):
    path = checkpoint / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"cannot read weights file .*model\.safetensors"):
        load_model(checkpoint)


def test_corrupt_pytorch_bin(checkpoint):
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "pytorch_model.bin").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ModelLoadError, match=r"cannot read weights file .*pytorch_model\.bin"):
        load_model(checkpoint)


def test_missing_shard(tmp_path, reference):
    reference[0].save_pretrained(str(tmp_path), max_shard_size="20KB")
    victim = sorted(tmp_path.glob("model-*.safetensors"))[-1]
    victim.unlink()
    with pytest.raises(ModelLoadError, match=f"shard {victim.name}"):
        load_model(tmp_path)


def test_a_file_is_not_a_model_directory(checkpoint):
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(checkpoint / "config.json")


# --- Hub resolution ------------------------------------------------------------------------


def _preprocessor() -> dict:
    return {
        "image_processor_type": "DPTImageProcessor",
        "do_resize": True,
        "size": {"height": 64, "width": 64},
        "keep_aspect_ratio": True,
        "ensure_multiple_of": 16,
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_pad": False,
    }


@pytest.fixture
def hub(tmp_path, checkpoint, monkeypatch):
    """HF_HOME with one cached repo (org/tiny-dpt) in huggingface_hub's cache layout."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    repo = home / "hub" / "models--org--tiny-dpt"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint / name, snapshot / name)
    (snapshot / "preprocessor_config.json").write_text(json.dumps(_preprocessor()))
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snapshot


def test_cached_repo_loads_offline(hub, reference):
    assert resolve_source("org/tiny-dpt") == hub
    assert_close(_out(load_model("org/tiny-dpt")), reference[1])


def test_cached_repo_processor(hub):
    processor = load_processor("org/tiny-dpt")
    ref = T.DPTImageProcessor.from_dict(_preprocessor())
    rgb = torch.randint(0, 256, (40, 60, 3), generator=torch.Generator().manual_seed(0))
    ours = processor.preprocess(rgb.numpy().astype("uint8"))
    theirs = ref(rgb.numpy().astype("uint8"), return_tensors="pt").pixel_values
    assert ours.shape == theirs.shape


def test_uncached_repo_offline_says_why(hub):
    with pytest.raises(ModelLoadError, match=r"not in the local Hugging Face cache.*offline"):
        load_model("org/other-model")


def test_uncached_repo_without_network_says_why(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(ModelLoadError, match=r"not in the local Hugging Face cache.*no network"):
        load_model("org/other-model")


def test_missing_processor_config(checkpoint):
    with pytest.raises(ModelLoadError, match=r"preprocessor_config\.json not found"):
        load_processor(checkpoint)


def test_entries_for_unpersisted_buffers_are_not_unexpected():
    """transformers ignores checkpoint entries for buffers a model does not persist (old
    checkpoints saved them); so do we, while a truly unknown key still fails."""
    from dpt_ros.model.checkpoint import check_keys, complete_state

    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("position_ids", torch.arange(4), persistent=False)

    toy = Toy()
    state = {**toy.state_dict(), "position_ids": torch.arange(4)}
    check_keys(toy, state, "toy.safetensors")
    assert set(complete_state(toy, state)) == {"linear.weight", "linear.bias"}
    with pytest.raises(ModelLoadError, match=r"toy\.safetensors .*unexpected keys: other"):
        check_keys(toy, {**state, "other": torch.zeros(1)}, "toy.safetensors")


def test_loaded_weights_do_not_depend_on_the_file(checkpoint, reference):
    """Saving over the checkpoint we loaded from must not disturb the loaded model."""
    model = load_model(checkpoint)
    save_model(model, checkpoint)
    (checkpoint / "model.safetensors").write_bytes(b"")
    assert_close(_out(model), reference[1])

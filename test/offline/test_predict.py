"""`dpt-ros predict`: the documented files for images, a folder and a video, their values
against Pipeline.process on the same frames, PLY geometry against analytic back-projection,
and the overwrite / unreadable-input rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _offline_util import checkpoints, frame_rgb
from PIL import Image

from dpt_ros.core.camera.geometry import Intrinsics
from dpt_ros.core.pipeline.pipeline import Frame, Pipeline, PipelineSettings
from dpt_ros.offline.cli import main
from dpt_ros.offline.exitcodes import ExitCode

FX, CX, CY = 30.0, 18.5, 13.0  # FY defaults to FX


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("predict_in")
    (root / "folder" / "sub").mkdir(parents=True)
    Image.fromarray(frame_rgb(0)).save(root / "folder" / "a.png")
    Image.fromarray(frame_rgb(1)).save(root / "folder" / "sub" / "b.jpg", quality=95)
    (root / "folder" / "notes.txt").write_text("not an image: ignored in folders")
    Image.fromarray(frame_rgb(2, 24, 36)).save(root / "single.png")
    video = np.stack([frame_rgb(10 + i, 32, 48) for i in range(3)])
    iio.imwrite(root / "clip.mp4", video, plugin="FFMPEG", fps=5)
    return {
        "folder": root / "folder",
        "single": root / "single.png",
        "video": root / "clip.mp4",
    }


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    c = checkpoints()
    return Pipeline(str(c["metric"]), str(c["segmentation"]), device="cpu")


def _decoded(inputs: dict[str, Path]) -> dict[str, np.ndarray]:
    """Frames as an independent decoder (PIL, imageio) reads them, by output stem."""
    import imageio.v3 as iio

    frames = {
        "a": np.asarray(Image.open(inputs["folder"] / "a.png").convert("RGB")),
        "sub/b": np.asarray(Image.open(inputs["folder"] / "sub" / "b.jpg").convert("RGB")),
        "single": np.asarray(Image.open(inputs["single"]).convert("RGB")),
    }
    for i, f in enumerate(iio.imiter(inputs["video"], plugin="FFMPEG")):
        frames[f"clip/{i:06d}"] = f
    return frames


def _models(*extra: str) -> list[str]:
    c = checkpoints()
    return ["--depth-model", str(c["metric"]), "--segmentation-model", str(c["segmentation"]),
            "--device", "cpu", *extra]


def test_files_and_values(inputs, pipeline, tmp_path):
    out = tmp_path / "out"
    args = ["predict", str(inputs["folder"]), str(inputs["single"]), str(inputs["video"]),
            "--out", str(out), "--fx", str(FX), "--cx", str(CX), "--cy", str(CY),
            "--batch-size", "1", *_models()]
    assert main(args) == ExitCode.OK

    frames = _decoded(inputs)
    assert len(frames) == 6
    suffixes = ["_depth.png", "_depth_color.png", "_seg.png", "_seg_color.png", "_overlay.png",
                ".ply"]
    expected = {f"{stem}{s}" for stem in frames for s in suffixes}
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == expected

    want = {"depth", "depth_colorized", "segmentation", "seg_colorized", "overlay"}
    for stem, rgb in frames.items():
        h, w = rgb.shape[:2]
        ref = pipeline.process([Frame(rgb)], want)[0]
        mm = np.asarray(Image.open(out / f"{stem}_depth.png"))
        assert mm.dtype == np.uint16 and mm.shape == (h, w)
        valid = np.isfinite(ref.depth)
        assert valid.any()
        assert np.all(mm[~valid] == 0)
        # 16-bit millimetres round-trip to the float metres within 1 mm (here: 0.5 mm + eps).
        assert np.abs(mm[valid] / 1000.0 - ref.depth[valid]).max() <= 0.0005 + 1e-6
        seg = np.asarray(Image.open(out / f"{stem}_seg.png"))
        np.testing.assert_array_equal(seg, ref.segmentation)
        for name, value in (("_depth_color.png", ref.depth_colorized),
                            ("_seg_color.png", ref.seg_colorized),
                            ("_overlay.png", ref.overlay)):
            rgb_png = np.asarray(Image.open(out / f"{stem}{name}").convert("RGB"))
            np.testing.assert_array_equal(rgb_png, value[..., ::-1])  # BGR in, RGB file


def _read_ply(path: Path) -> np.ndarray:
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode("ascii").splitlines()
    assert lines[:2] == ["ply", "format binary_little_endian 1.0"]
    count = int(lines[2].split()[-1])
    types = {"float": "<f4", "uchar": "u1", "uint": "<u4", "ushort": "<u2"}
    props = [ln.split() for ln in lines[3:] if ln.startswith("property")]
    fields = [(name, types[kind]) for _, kind, name in props]
    vertices = np.frombuffer(body, dtype=np.dtype(fields))
    assert len(vertices) == count
    return vertices


def test_npy_depth_and_ply_geometry(inputs, pipeline, tmp_path):
    out = tmp_path / "out"
    args = ["predict", str(inputs["single"]), "--out", str(out), "--depth-format", "npy",
            "--fx", str(FX), "--cx", str(CX), "--cy", str(CY), *_models()]
    assert main(args) == ExitCode.OK
    rgb = np.asarray(Image.open(inputs["single"]).convert("RGB"))
    ref = pipeline.process([Frame(rgb)], {"depth", "segmentation"})[0]
    depth = np.load(out / "single_depth.npy")
    assert depth.dtype == np.float32
    np.testing.assert_array_equal(depth, ref.depth)  # NaN where invalid, bit-identical

    # Analytic pinhole back-projection of the same depth (REP 103 optical frame).
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u]
    ply = _read_ply(out / "single.ply")
    assert len(ply) == len(z)
    np.testing.assert_allclose(ply["z"], z, rtol=1e-6)
    np.testing.assert_allclose(ply["x"], (u - CX) * z / FX, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ply["y"], (v - CY) * z / FX, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.stack([ply["red"], ply["green"], ply["blue"]], -1), rgb[v, u])
    np.testing.assert_array_equal(ply["label"], ref.segmentation[v, u])


def test_batch_size_does_not_change_results(inputs, tmp_path):
    outs = []
    for batch in (1, 3):
        out = tmp_path / f"b{batch}"
        args = ["predict", str(inputs["video"]), "--out", str(out), "--depth-format", "npy",
                "--batch-size", str(batch), "--outputs", "depth", *_models()]
        assert main(args) == ExitCode.OK
        outs.append(sorted(out.rglob("*.npy")))
    assert [p.name for p in outs[0]] == [p.name for p in outs[1]] and len(outs[0]) == 3
    for a, b in zip(*outs):
        np.testing.assert_allclose(np.load(a), np.load(b), rtol=1e-4)


def test_relative_model_with_scale_from_params_file(inputs, tmp_path):
    """relative.npy is the raw output; depth.scale/shift in the node's YAML make depth metric
    as 1 / (scale * relative + shift)."""
    scale, shift = 0.5, 0.05
    params = tmp_path / "p.yaml"
    params.write_text(
        "dpt_node:\n  ros__parameters:\n"
        f"    depth_model: '{checkpoints()['relative']}'\n    device: cpu\n"
        f"    depth:\n      scale: {scale}\n      shift: {shift}\n"
    )
    out = tmp_path / "out"
    args = ["predict", str(inputs["single"]), "--out", str(out), "--params", str(params),
            "--depth-format", "npy"]
    assert main(args) == ExitCode.OK
    names = {p.name for p in out.iterdir()}
    assert names == {"single_depth.npy", "single_relative.npy", "single_depth_color.png"}
    rel = np.load(out / "single_relative.npy")
    depth = np.load(out / "single_depth.npy")
    inv = scale * rel.astype(np.float64) + shift
    expected = np.where(inv > 0, 1.0 / inv, np.nan)
    np.testing.assert_allclose(depth, expected, rtol=1e-5)

    # Without a scale a relative model writes no metric depth.
    out2 = tmp_path / "out2"
    args = ["predict", str(inputs["single"]), "--out", str(out2), "--depth-model",
            str(checkpoints()["relative"]), "--device", "cpu"]
    assert main(args) == ExitCode.OK
    assert {p.name for p in out2.iterdir()} == {"single_relative.npy", "single_depth_color.png"}


def test_existing_outputs_need_force(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["predict", str(inputs["single"]), "--out", str(out), "--outputs", "depth",
            *_models()]
    assert main(args) == ExitCode.OK
    target = out / "single_depth.png"
    target.write_bytes(b"precious")
    assert main(args) == ExitCode.OUTPUT_EXISTS
    assert "--force" in capsys.readouterr().err
    assert target.read_bytes() == b"precious"
    assert main([*args, "--force"]) == ExitCode.OK
    assert np.asarray(Image.open(target)).dtype == np.uint16


def test_unreadable_input_is_skipped_and_reported(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "clip.mp4").write_bytes(b"not a video" * 50)
    Image.fromarray(frame_rgb(3)).save(folder / "good.png")
    out = tmp_path / "out"
    code = main(["predict", str(folder), "--out", str(out), "--outputs", "depth", *_models()])
    assert code == ExitCode.SKIPPED
    err = capsys.readouterr().err
    assert "skipped 2 unreadable input(s)" in err
    assert "broken.png" in err and "clip.mp4: Could not load meta information" in err
    assert {p.name for p in out.iterdir()} == {"good_depth.png"}


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--outputs", "relative"], ExitCode.USAGE),  # metric model: no relative output
        (["--outputs", "points"], ExitCode.USAGE),  # points need intrinsics
        (["--fx", "10", "--hfov", "60"], ExitCode.USAGE),
    ],
)
def test_bad_requests(inputs, tmp_path, extra, code):
    out = tmp_path / "out"
    assert main(["predict", str(inputs["single"]), "--out", str(out), *extra, *_models()]) == code
    assert not out.exists() or not any(out.iterdir())


def test_missing_input_and_bad_config(tmp_path):
    out = str(tmp_path / "out")
    assert main(["predict", str(tmp_path / "nope.png"), "--out", out, *_models()]) == ExitCode.INPUT
    img = tmp_path / "x.png"
    Image.fromarray(frame_rgb(0)).save(img)
    assert main(["predict", str(img), "--out", out, "--device", "cpu"]) == ExitCode.CONFIG
    bad = tmp_path / "bad.yaml"
    bad.write_text("dpt_node:\n  ros__parameters:\n    colormap: rainbow\n")
    assert main(["predict", str(img), "--out", out, "--params", str(bad), *_models()]) == (
        ExitCode.CONFIG
    )


def test_hfov_intrinsics(inputs, tmp_path):
    out = tmp_path / "out"
    args = ["predict", str(inputs["single"]), "--out", str(out), "--hfov", "90",
            "--depth-format", "npy", "--outputs", "depth", "points", *_models()]
    assert main(args) == ExitCode.OK
    depth = np.load(out / "single_depth.npy")
    intr = Intrinsics.from_hfov(depth.shape[1], depth.shape[0], 90.0)
    assert intr.fx == pytest.approx(depth.shape[1] / 2)  # tan(45 deg) = 1
    ply = _read_ply(out / "single.ply")
    v, u = np.nonzero(np.isfinite(depth))
    np.testing.assert_allclose(ply["x"], (u - intr.cx) * depth[v, u] / intr.fx, rtol=1e-5,
                               atol=1e-6)


def test_settings_from_yaml_reach_the_pipeline(inputs, tmp_path):
    """colormap / fixed range from the YAML give the same image as those PipelineSettings."""
    params = tmp_path / "p.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    colormap: inferno\n"
        "dpt_node:\n  ros__parameters:\n    depth:\n      min: 0.5\n      max: 4.0\n"
    )
    out = tmp_path / "out"
    args = ["predict", str(inputs["single"]), "--out", str(out), "--params", str(params),
            "--outputs", "depth_colorized", "--depth-model", str(checkpoints()["metric"]),
            "--device", "cpu"]
    assert main(args) == ExitCode.OK
    rgb = np.asarray(Image.open(inputs["single"]).convert("RGB"))
    settings = PipelineSettings(colormap="inferno", depth_min=0.5, depth_max=4.0)
    ref = Pipeline(str(checkpoints()["metric"]), device="cpu", settings=settings)
    expected = ref.process([Frame(rgb)], {"depth_colorized"})[0].depth_colorized
    got = np.asarray(Image.open(out / "single_depth_color.png").convert("RGB"))
    np.testing.assert_array_equal(got, expected[..., ::-1])


def test_inputs_with_the_same_stem_are_refused(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(frame_rgb(0)).save(folder / "x.png")
    Image.fromarray(frame_rgb(1)).save(folder / "x.jpg")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out), *_models()]) == ExitCode.USAGE
    assert "same outputs" in capsys.readouterr().err and not out.exists()

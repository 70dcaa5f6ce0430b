"""The costmap filters as parameters: the table's checks, the settings map, and the pipeline
with the shipped synthetic checkpoints (class names resolved against the model's labels,
unknown names rejected with the list of known ones, the cloud free of excluded classes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dpt_ros.config.params import check_update, check_value, pipeline_settings
from dpt_ros.config.params_file import settings_from_params
from dpt_ros.config.settings import PipelineSettings
from dpt_ros.core.pipeline.frame import Frame
from dpt_ros.core.pipeline.pipeline import Pipeline, PipelineConfigError
from dpt_ros.synthetic.classes import CEILING, FLOOR, WALL
from dpt_ros.synthetic.render import render_path_frame

WEIGHTS = Path(__file__).resolve().parents[2] / "dpt_ros" / "weights"


def test_parameters_declared_with_ranges_and_checked():
    assert check_value("pointcloud.voxel_size", 0.05) is None
    assert "must be >= 0.0" in check_value("pointcloud.voxel_size", -0.1)
    assert "must be <= 10.0" in check_value("pointcloud.edge_threshold", 11.0)
    assert check_value("pointcloud.exclude_classes", ["floor", "3"]) is None
    assert "empty class name" in check_value("pointcloud.include_classes", ["box", " "])
    assert "list of strs" in check_value("pointcloud.include_classes", [3])
    reason = check_update({"pointcloud.exclude_classes": ["floor"]}, {"depth_model": "x"})
    assert "needs a segmentation_model" in reason
    assert check_update({"pointcloud.exclude_classes": ["floor"]},
                        {"depth_model": "x", "segmentation_model": "y"}) is None


def test_settings_map_reads_the_filters():
    s = settings_from_params({"pointcloud.voxel_size": 0.1, "pointcloud.edge_threshold": 0.05,
                              "pointcloud.include_classes": ["box", "3"],
                              "pointcloud.exclude_classes": []})
    assert (s.pointcloud_voxel_size, s.pointcloud_edge_threshold) == (0.1, 0.05)
    assert s.pointcloud_include_classes == ("box", "3") and s.pointcloud_exclude_classes == ()
    assert pipeline_settings({}).pointcloud_voxel_size == 0.0
    with pytest.raises(ValueError, match="pointcloud_include_classes"):
        settings_from_params({"pointcloud.include_classes": [1, 2]})


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(depth_model=str(WEIGHTS / "synthetic-depth"),
                    segmentation_model=str(WEIGHTS / "synthetic-seg"), device="cpu")


def test_unknown_class_fails_at_start_up_listing_the_labels():
    bad = PipelineSettings(pointcloud_exclude_classes=("floor", "carpet"))
    with pytest.raises(PipelineConfigError) as err:
        Pipeline(depth_model=str(WEIGHTS / "synthetic-depth"),
                 segmentation_model=str(WEIGHTS / "synthetic-seg"), device="cpu",
                 settings=bad)
    assert "'carpet'" in str(err.value) and "0 floor" in str(err.value)
    with pytest.raises(PipelineConfigError, match="need a segmentation_model"):
        Pipeline(depth_model=str(WEIGHTS / "synthetic-depth"), device="cpu",
                 settings=PipelineSettings(pointcloud_include_classes=("3",)))


def test_runtime_check_rejects_unknown_names(pipeline):
    ok = replace(pipeline.settings, pointcloud_exclude_classes=("floor", "2"))
    assert pipeline.check_settings(ok) is None
    reason = pipeline.check_settings(replace(ok, pointcloud_include_classes=("tabel",)))
    assert "unknown class 'tabel'" in reason and "3 box" in reason


def test_pipeline_cloud_carries_only_obstacle_classes(pipeline):
    frame = render_path_frame(seed=1000291, index=5, width=256, height=192)
    pipeline.settings = PipelineSettings(
        pointcloud_exclude_classes=("floor", "wall", "ceiling"), pointcloud_voxel_size=0.05,
        pointcloud_edge_threshold=0.05, pointcloud_label=True)
    try:
        result = pipeline.process([Frame(frame.rgb, frame.intrinsics)], {"points"})[0]
        cloud = result.points
        assert cloud.height == 1 and cloud.is_dense and cloud.width > 0
        labels = cloud.data.view(np.uint32).reshape(cloud.width, -1)[:, -1]
        assert not np.isin(labels, [FLOOR, WALL, CEILING]).any()
        # without a label field the class filter still applies (segmentation still runs)
        pipeline.settings = replace(pipeline.settings, pointcloud_label=False)
        unlabeled = pipeline.process([Frame(frame.rgb, frame.intrinsics)], {"points"})[0]
        assert unlabeled.points.width == cloud.width
        assert [f[0] for f in unlabeled.points.fields] == ["x", "y", "z", "rgb"]
    finally:
        pipeline.settings = PipelineSettings()

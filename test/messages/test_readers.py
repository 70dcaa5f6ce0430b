"""Reading published messages back as arrays (`messages.image_array`, `cloud_fields`): the
inverse of `image_msg` / `pointcloud_msg`, row padding and byte order included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from std_msgs.msg import Header

from dpt_ros import messages
from dpt_ros.core.errors import BadInput
from dpt_ros.core.pointcloud.pack import pack_cloud

RNG = np.random.default_rng(3)


@pytest.mark.parametrize(("encoding", "dtype"), [("mono8", np.uint8), ("16UC1", np.uint16),
                                                 ("32FC1", np.float32)])
def test_image_array_reads_back_what_image_msg_wrote(encoding, dtype):
    array = (RNG.random((5, 7)) * 200).astype(dtype)
    msg = messages.image_msg(array, encoding, Header())
    np.testing.assert_array_equal(messages.image_array(msg), array)


def test_image_array_padding_and_byte_order():
    array = RNG.random((3, 4)).astype(np.float32)
    big = array.astype(">f4")
    padded = np.zeros((3, 20), np.uint8)
    padded[:, :16] = big.view(np.uint8).reshape(3, 16)
    msg = messages.image_msg(array, "32FC1", Header())
    msg.is_bigendian, msg.step, msg.data = 1, 20, padded.tobytes()
    np.testing.assert_array_equal(messages.image_array(msg), array)
    msg.encoding = "rgb8"
    with pytest.raises(BadInput):
        messages.image_array(msg)


def test_cloud_fields_keep_every_point_aligned():
    h, w = 3, 4
    xyz = torch.from_numpy(RNG.normal(size=(h, w, 3)).astype(np.float32))
    xyz[1, 2] = float("nan")
    labels = torch.from_numpy(RNG.integers(0, 6, (h, w)).astype(np.int64))
    packed = pack_cloud(xyz, None, labels)
    msg = messages.pointcloud_msg(packed, Header())
    cloud = messages.cloud_fields(msg, ("x", "y", "z", "label", "rgb"))
    assert "rgb" not in cloud
    got = np.stack([cloud[c] for c in "xyz"], 1)
    np.testing.assert_array_equal(got, xyz.reshape(-1, 3).numpy())
    np.testing.assert_array_equal(cloud["label"], labels.reshape(-1).numpy())

"""Bytes ↔ tensors, what cv_bridge does for ROS: image decoding, YUV / Bayer conversion on
the device, host → device upload, device → host transfer into framed buffers, reference
decoding."""

"""The camera model, what image_geometry and message_filters do for ROS: intrinsics and
projection (geometry), lens distortion, CameraInfo fields, rectification, stamp pairing."""

"""dpt_ros: DPT depth, segmentation and point clouds for ROS 2, in plain PyTorch."""

__version__ = "0.1.0"

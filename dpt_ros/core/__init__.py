"""The processing core shared by the node, the bag tool and the image CLI (no ROS imports)."""

"""A procedural indoor world with exact metric depth and class ids (no ROS imports)."""

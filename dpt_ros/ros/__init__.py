"""The rclpy layer: message conversion and nodes."""

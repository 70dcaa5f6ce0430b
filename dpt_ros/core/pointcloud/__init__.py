"""Point clouds: PointCloud2 byte packing on the device (pack)."""

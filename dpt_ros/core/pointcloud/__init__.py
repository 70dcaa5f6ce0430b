"""Point clouds on the device: PointCloud2 byte packing (pack) and the costmap filters
(filters: flying pixels, classes, voxel grid)."""

"""The processing core shared by the node, the bag tool and the image CLI (no ROS imports).

By concern, lowest first: `errors` (BadInput), `camera/` (the camera model: geometry, lens
distortion, CameraInfo fields, rectification, stamp pairing), `codecs/` (image decoding,
YUV / Bayer conversion, upload, transfer, reference decoding), `pointcloud/` (PointCloud2
packing), `render/` (colour maps, palettes), `alignment/` (metric alignment to a reference),
`pipeline/` (frames and results, one model, the NaN guard, outputs, the Pipeline). The
start-up configuration it reads (vocabularies, PipelineSettings, DecodeOptions) lives below
it, in `dpt_ros.config`."""

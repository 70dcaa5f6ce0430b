"""`dpt-ros predict`: images, folders and videos in; depth / segmentation / point-cloud files
out. `run` drives the pipeline, `sources` reads the inputs, `writers` and `ply` write the files."""

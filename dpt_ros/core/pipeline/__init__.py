"""The one processing pipeline: frames and results (frame), one model (model_task), the
NaN guard (finite_guard), which outputs exist (outputs), frames in → arrays out (pipeline).

Kept empty on purpose: importing a record from `core.pipeline.pipeline.frame` does not load the
models."""

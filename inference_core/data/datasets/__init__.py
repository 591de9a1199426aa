"""Vertex-space datasets (VOCASET, BIWI layouts) converted into the project's dataset format
(``python -m inference_core flame convert-data``)."""

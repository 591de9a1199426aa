"""What both processes share, stdlib only (Blender's Python imports it): the bridge protocol
(``Msg``/``Err`` constants, framing), its client, the ARKit channel names, the model-card reader,
:class:`~.options.SessionOptions` (the one source of generation defaults and limits) and paths."""

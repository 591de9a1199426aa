"""Training and evaluation (torch): batches and augmentation (``data``), the training loop
(``train``), the held-out evaluation (``evaluate``) and lip sync on real speech (``lipsync``)."""

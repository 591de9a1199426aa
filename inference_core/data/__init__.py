"""Training data: the on-disk dataset format, corpus generation, dataset converters."""

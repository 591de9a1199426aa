"""Training data: the on-disk dataset format (``format``), phonemes and the articulation rules;
``corpus/`` (the synthetic TTS corpus), ``realspeech/`` (real speech built from Debian packages),
``datasets/`` (VOCASET/BIWI converters)."""

"""Real human speech the project builds itself: Debian's Asterisk voice prompts, phone-aligned.

Why: the synthetic corpus has only TTS voices, and a model trained on it closes its lips on real
voices no better than an amplitude-driven jaw. Debian ships professionally recorded prompts in
five languages (CC-BY-SA / CC-BY / GPL / BSD-style licences, see ``SOURCES.json`` of a build)
with transcripts; aligned to phones they give held-out real speakers for lip metrics and real
audio for training.

Modules:

* :mod:`.sources` – which Debian packages, speakers, transcripts and licences; fetch, unpack, decode.
* :mod:`.text` – transcript cleaning (notes, non-speech, symbols) and word tokens.
* :mod:`.features` – MFCC-like features, speech span, median f0 (numpy/scipy only).
* :mod:`.dtw` – dynamic time warping (vectorised rows) and time mapping along the path.
* :mod:`.align` – the aligners: pocketsphinx (English) and espeak-ng synthesis + DTW (all languages).
* :mod:`.split` – prompt groups and the speaker / group split rule.
* :mod:`.build` – ``python -m inference_core realspeech``: the resumable, deterministic builder.
* :mod:`.teacher` – ``--weights-cmd`` helper: the dataset's own motion for an utterance.

Nothing here imports torch.
"""

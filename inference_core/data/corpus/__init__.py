"""The synthetic training corpus: text-to-speech voices that report phone timings (espeak-ng,
flite, festival), the articulation rules turning those timings into ARKit motion, and audio
augmentation (``python -m inference_core corpus``)."""

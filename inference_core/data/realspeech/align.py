"""Phone timings for a recording whose text is known: two aligners, and how to compare them.

* **pocketsphinx** (English): forced alignment of the transcript with the CMU acoustic model
  and dictionary PyPI's ``pocketsphinx`` ships; words the dictionary lacks get espeak-ng's
  pronunciation (mapped to ARPAbet). Two passes, as pocketsphinx wants: words, then phones.
* **espeak-dtw** (every language): espeak-ng speaks the transcript in the language (its
  phoneme events time its own speech exactly), at a rate that matches the recording's speech
  span; DTW between the two on log-mel features (:mod:`.features`, :mod:`.dtw`) carries each synthetic
  phone boundary to the recording. Its confidence is the DTW path cost, and the same cost for
  other texts of the language (*impostors*) says whether the transcript fits at all: a
  recording must match its own text better than texts that were not said.

espeak-ng's mnemonics of other languages mostly follow the English ones that
:func:`inference_core.data.phonemes.map_espeak` knows; the few that it would map wrongly for
the lips are rewritten to English mnemonics first
(:data:`inference_core.data.phonemes.LANG_REWRITE`, shared with the multilingual TTS corpus).

espeak-ng keeps hidden state between calls (see :mod:`..corpus.build`), so deterministic
results need each utterance aligned in a fresh process; :mod:`.build` does that.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..phonemes import to_arpabet
from . import features
from .dtw import dtw
from .sources import SR
from ..phonemes import LANG_REWRITE, espeak_to_arpabet  # noqa: F401  (re-exported: the aligner's mapping)

Phones = list[tuple[str, float, float]]


DEFAULT_RATE = 175
# DTW: added to each horizontal/vertical step (local distances are ~1.5-2): fewer squeezed
# phones; on 44 English prompts the boundary agreement with pocketsphinx went p90 58 -> 52 ms
STEP_PENALTY = 0.3
RATE_RANGE = (80, 370)


def tidy(phones: Sequence[tuple[str, float, float]], dur: float, min_len: float = 0.01,
         min_sil: float = 0.03) -> Phones:
    """Tile [0, dur] exactly: ordered boundaries, every phone >= ``min_len``, silences shorter
    than ``min_sil`` given to their neighbours, adjacent silences merged, edges padded with sil."""
    labs = [str(p[0]) for p in phones]
    if not labs:
        return [("sil", 0.0, dur)]
    b = np.array([phones[0][1]] + [float(p[2]) for p in phones], float)
    b = np.clip(np.maximum.accumulate(b), 0.0, dur)
    if b[0] > 0:
        labs, b = ["sil"] + labs, np.concatenate([[0.0], b])
    if b[-1] < dur:
        labs, b = labs + ["sil"], np.concatenate([b, [dur]])
    b[-1] = dur
    n = len(labs)
    if n * min_len <= dur:  # push boundaries apart: forward, then back from the end
        for k in range(1, n):
            b[k] = max(b[k], b[k - 1] + min_len)
        b[n] = dur
        for k in range(n - 1, 0, -1):
            b[k] = min(b[k], b[k + 1] - min_len)
    out: list[tuple[str, float, float]] = []
    for k, lab in enumerate(labs):
        s, e = float(b[k]), float(b[k + 1])
        if e <= s:
            continue
        if lab == "sil" and e - s < min_sil and 0 < k < n - 1 and out:
            out[-1] = (out[-1][0], out[-1][1], e)  # a flicker of silence inside speech
            continue
        if out and lab == "sil" and out[-1][0] == "sil":
            out[-1] = ("sil", out[-1][1], e)
        else:
            out.append((lab, s, e))
    out[0] = (out[0][0], 0.0, out[0][2])
    out[-1] = (out[-1][0], out[-1][1], dur)
    return [(lab, round(s, 4), round(e, 4)) for lab, s, e in out]


# ----------------------------------------------------------------------------- espeak + DTW

@dataclass
class Synth:
    audio: np.ndarray   # float64 at SR
    phones: Phones      # ARPAbet, tiling [0, len(audio)/SR]
    rate: int


VOICELESS_STOPS = {"p", "t", "k", "ch"}
VOICED_STOPS = {"b", "d", "g", "jh"}
CLOSURE_DB = 25.0       # closure frames: this far below the preceding phone's loudest frame
CLOSURE_MAX_S = 0.15
AFTER_PAUSE_S = 0.06    # a stop after a pause: its closure is taken from the pause


def stop_closures(phones: Sequence[tuple[str, float, float]], audio: np.ndarray) -> Phones:
    """Give stops their closure.

    espeak-ng's phoneme event for /p t k/ (and some /b d g/) starts at the *burst*: the closure silence before it
    is timed as the end of the preceding phone (a 30 ms /p/ after a 130 ms vowel whose last
    40 ms are silent). For lips that is wrong, they are shut during the closure. So the
    boundary moves back to where the preceding phone's trailing quiet run starts (frames
    ``CLOSURE_DB`` below its loudest, at most ``CLOSURE_MAX_S``), and after a pause by
    ``AFTER_PAUSE_S`` (at most half the pause; voiceless stops only)."""
    hop = int(0.005 * SR)
    n = len(audio) // hop
    if n == 0:
        return list(phones)
    db = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    labs = [str(p[0]) for p in phones]
    st = [float(p[1]) for p in phones]
    en = [float(p[2]) for p in phones]
    for k in range(1, len(labs)):
        lab, s = labs[k], st[k]
        if lab not in VOICELESS_STOPS | VOICED_STOPS:
            continue
        if labs[k - 1] == "sil":
            if lab in VOICED_STOPS:
                continue
            new = max(s - AFTER_PAUSE_S, st[k - 1] + (s - st[k - 1]) / 2)
        else:
            i0, i1 = int(st[k - 1] / 0.005), int(s / 0.005)
            seg = db[i0:min(i1, n)]
            if seg.size < 2:
                continue
            quiet = seg < seg.max() - CLOSURE_DB
            j = len(seg)
            while j > 0 and quiet[j - 1] and (len(seg) - j + 1) * 0.005 <= CLOSURE_MAX_S:
                j -= 1
            new = max(st[k - 1] + 0.02, (i0 + j) * 0.005) if j < len(seg) else s
        if new < s:
            en[k - 1] = st[k] = new
    return list(zip(labs, st, en))


def synthesize(text: str, voice: str, language: str, rate: int = DEFAULT_RATE) -> Synth:
    """espeak-ng speech of ``text`` at 16 kHz with its ARPAbet phone timeline (stop closures
    given to the stops, :func:`stop_closures`)."""
    import soxr

    from ..corpus import espeak

    syn = espeak.get().synth(text, voice, rate=rate)
    audio = soxr.resample(syn.audio.astype(np.float64), syn.sample_rate, SR, quality="VHQ")
    dur = len(audio) / SR
    phones = tidy(espeak_to_arpabet(syn.phonemes, language), dur)
    return Synth(audio, tidy(stop_closures(phones, audio), dur), rate)


def matched_rate(text: str, voice: str, language: str, rec_span: float) -> Synth:
    """Synthesis whose speech span is as long as the recording's (one re-synthesis)."""
    first = synthesize(text, voice, language)
    s0, s1 = features.speech_span(first.audio, SR)
    if s1 - s0 <= 0.05 or rec_span <= 0.05:
        return first
    rate = int(np.clip(round(DEFAULT_RATE * (s1 - s0) / rec_span), *RATE_RANGE))
    return first if rate == DEFAULT_RATE else synthesize(text, voice, language, rate)


@dataclass
class DtwResult:
    phones: Phones
    cost: float                  # DTW path cost (mean frame distance along the path)
    rate: int                    # espeak rate the template was spoken at
    span_ratio: float            # recording speech span / template speech span
    impostor_costs: list[float] = field(default_factory=list)

    @property
    def margin(self) -> float | None:
        """min impostor cost / own cost (> 1: the transcript fits better than other texts)."""
        return min(self.impostor_costs) / self.cost if self.impostor_costs else None


def dtw_align(audio: np.ndarray, text: str, language: str, voice: str, narrowband: bool = False,
              impostors: Sequence[str] = (), band: float | None = 0.25) -> DtwResult:
    """Align ``audio`` (float, 16 kHz) to espeak-ng's ``voice`` speaking ``text``."""
    fmax = 3800.0 if narrowband else 7600.0
    dur = len(audio) / SR
    r0, r1 = features.speech_span(audio, SR)
    rec = features.align_features(audio, SR, fmax=fmax)

    def one(t: str) -> tuple[Synth, Any, float]:
        syn = matched_rate(t, voice, language, r1 - r0)
        path = dtw(features.align_features(syn.audio, SR, fmax=fmax), rec, band=band, penalty=STEP_PENALTY)
        s0, s1 = features.speech_span(syn.audio, SR)
        return syn, path, (r1 - r0) / max(s1 - s0, 1e-3)

    syn, path, ratio = one(text)
    n_syn = int(np.ceil(len(syn.audio) / (features.HOP_S * SR)))
    bounds = np.array([syn.phones[0][1]] + [e for _, _, e in syn.phones])
    mapped = path.map_times(bounds, n_syn, features.HOP_S)
    mapped[0], mapped[-1] = 0.0, dur
    phones = tidy([(lab, float(mapped[k]), float(mapped[k + 1])) for k, (lab, _, _) in enumerate(syn.phones)],
                  dur)
    costs = [one(t)[1].cost for t in impostors]
    return DtwResult(phones, path.cost, syn.rate, float(ratio), costs)


def recording_costs(audio: np.ndarray, reference: np.ndarray, impostors: Sequence[np.ndarray],
                    band: float | None = 0.25) -> tuple[float, list[float]]:
    """DTW cost of ``audio`` against another person's recording of the same prompt, and
    against their recordings of other prompts (telephone band, 8 kHz-safe features).

    For a borrowed transcript: if this speaker says what the core speaker says, the transcript
    (the core speaker's) fits; person against person is a sharper test of the *words* than
    person against synthesis."""
    rec = features.align_features(audio, SR, fmax=3800.0)

    def cost(other: np.ndarray) -> float:
        return dtw(features.align_features(other, SR, fmax=3800.0), rec, band=band, penalty=STEP_PENALTY).cost

    return cost(reference), [cost(x) for x in impostors]


# ----------------------------------------------------------------------------- pocketsphinx

SPHINX_PHONES = {"aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
                 "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
                 "uh", "uw", "v", "w", "y", "z", "zh"}
TO_SPHINX = {"ax": "ah", "dx": "t"}
PAD_S = 0.2
DITHER_LSB, DITHER_SEED = 2.0, 1234


def sphinx_version() -> str:
    from importlib.metadata import version

    return version("pocketsphinx")


class SphinxError(RuntimeError):
    pass


@dataclass
class SphinxResult:
    phones: Phones
    score: float          # mean acoustic log score per 10 ms frame (pocketsphinx logmath units)
    oov: list[str]        # words pronounced by espeak-ng because the dictionary lacks them
    wide_beams: bool = False  # aligned only on the retry with wider beams


class Sphinx:
    """pocketsphinx forced alignment with its bundled US English model and CMU dictionary."""

    WIDE_BEAMS = {"beam": 1e-80, "pbeam": 1e-80, "wbeam": 1e-60}

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise SphinxError("pocketsphinx is not installed (pip install -r requirements/dev.txt)") from exc
        self._decoder = Decoder
        self.dec = Decoder(samprate=SR, lm=None, loglevel="FATAL")
        self._wide: Any = None

    def pronounce(self, word: str) -> str | None:
        """espeak-ng's pronunciation of a word the dictionary lacks, in the model's phones."""
        syn = synthesize(word, "gmw/en-US", "en")
        ph = [TO_SPHINX.get(p, p) for p, _, _ in syn.phones if p != "sil"]
        ph = [p for p in ph if p in SPHINX_PHONES]
        return " ".join(p.upper() for p in ph) or None

    def _run(self, dec: Any, data: bytes, words: Sequence[str]) -> Any:
        for w in dict.fromkeys(words):
            if dec.lookup_word(w) is None:
                pron = self.pronounce(w)
                if pron is None:
                    raise SphinxError(f"no pronunciation for {w!r}")
                dec.add_word(w, pron, True)
        try:
            dec.set_align_text(" ".join(words))
            for second_pass in (False, True):
                if second_pass:
                    dec.set_alignment()
                dec.start_utt()
                dec.process_raw(data, full_utt=True)
                dec.end_utt()
            al = dec.get_alignment()
        except RuntimeError as exc:
            raise SphinxError(f"alignment failed: {exc}") from exc
        if al is None:
            raise SphinxError("no alignment")
        return al

    def align(self, pcm: np.ndarray, words: Sequence[str]) -> SphinxResult:
        """Phones of ``pcm`` (int16, 16 kHz) saying ``words``; raises :class:`SphinxError`.

        The audio gets 0.2 s of silence either side (without it the phone pass often fails to
        end, "Failed to stop utterance processing", on prompts cut right at the last sound) and a
        fixed, seeded dither of 2 LSB (digital silence, as in synthetic speech, makes the word
        pass find nothing). A failed alignment is tried once more with wider beams."""
        oov = [w for w in dict.fromkeys(words) if self.dec.lookup_word(w) is None]
        pad = np.zeros(int(PAD_S * SR))
        x = np.concatenate([pad, np.asarray(pcm, np.float64), pad])
        x += np.random.default_rng(DITHER_SEED).normal(0.0, DITHER_LSB, len(x))
        data = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
        try:
            al = self._run(self.dec, data, words)
            wide = False
        except SphinxError:
            if self._wide is None:
                self._wide = self._decoder(samprate=SR, lm=None, loglevel="FATAL", **self.WIDE_BEAMS)
            al = self._run(self._wide, data, words)
            wide = True
        frate = 100.0
        phones: list[tuple[str, float, float]] = []
        scores, frames = 0.0, 0
        for ph in al.phones():
            lab = ph.name.lower()
            lab = "sil" if lab == "sil" or lab.startswith("+") else lab
            phones.append((lab, ph.start / frate - PAD_S, (ph.start + ph.duration) / frate - PAD_S))
            scores += ph.score
            frames += ph.duration
        if not phones or frames == 0:
            raise SphinxError("empty alignment")
        dur = len(pcm) / SR
        inside = [(lab, max(0.0, s), min(dur, e)) for lab, s, e in phones if e > 0 and s < dur]
        return SphinxResult(tidy(inside, dur), scores / frames, oov, wide)


# ----------------------------------------------------------------------------- comparing

COMPARE_AS = {"ax": "ah", "dx": "t", "q": ""}


def boundary_errors(ref: Sequence[tuple[str, float, float]],
                    hyp: Sequence[tuple[str, float, float]]) -> np.ndarray:
    """|start difference| (s) of the phones two timelines share, matched as sequences.

    Silences are left out (a pause may be there in one and not the other); the label
    sequences are matched with difflib, so an extra or missing phone costs only itself."""
    def seq(ph: Sequence[tuple[str, float, float]]) -> tuple[list[str], list[float]]:
        labs, starts = [], []
        for lab, s, _ in ph:
            lab = COMPARE_AS.get(lab, lab)
            if lab and lab != "sil":
                labs.append(lab)
                starts.append(s)
        return labs, starts

    la, sa = seq(ref)
    lb, sb = seq(hyp)
    out: list[float] = []
    for blk in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_matching_blocks():
        out.extend(abs(sa[blk.a + k] - sb[blk.b + k]) for k in range(blk.size))
    return np.array(out)


# ----------------------------------------------------------------------------- synthetic check

def synthetic_pair(text: str, voice: str, language: str, seed: int, index: int) -> tuple[np.ndarray, Phones]:
    """A "recording" with known phone times: ``voice`` + a male variant, at a slow or fast rate
    (130 / 230 by ``index``), with pauses of 0.15-0.5 s at one or two random word boundaries,
    so its timing differs from the aligner's template in more than a uniform rate."""
    rng = np.random.default_rng([seed, index, 31])
    words_ = text.split()
    cuts = sorted(rng.choice(np.arange(1, len(words_)), size=min(len(words_) - 1, int(rng.integers(1, 3))),
                             replace=False).tolist()) if len(words_) > 1 else []
    chunks = [" ".join(words_[a:b]) for a, b in zip([0] + cuts, cuts + [len(words_)])]
    rate = 130 if index % 2 == 0 else 230
    audio: list[np.ndarray] = []
    phones: list[tuple[str, float, float]] = []
    t = 0.0
    for k, chunk in enumerate(chunks):
        if k:
            gap = float(rng.uniform(0.15, 0.5))
            audio.append(np.zeros(int(gap * SR)))
            phones.append(("sil", t, t + len(audio[-1]) / SR))
            t += len(audio[-1]) / SR
        syn = synthesize(chunk, voice + "+m3", language, rate)
        audio.append(syn.audio)
        phones.extend((lab, s + t, e + t) for lab, s, e in syn.phones)
        t += len(syn.audio) / SR
    x = np.concatenate(audio)
    return x, tidy(phones, len(x) / SR)


def synthetic_check(text: str, voice: str, language: str, seed: int, index: int,
                    with_sphinx: bool) -> dict[str, Any]:
    """Boundary errors (s) of the DTW aligner (template: ``voice`` + ``+f2``, as for a female
    speaker) and, for English, of pocketsphinx, against a synthetic recording's true phones."""
    from .text import words as word_tokens

    x, truth = synthetic_pair(text, voice, language, seed, index)
    out: dict[str, Any] = {"text": text, "seconds": round(len(x) / SR, 3)}
    d = dtw_align(x, text, language, voice + "+f2")
    out["dtw"] = [round(float(v), 4) for v in boundary_errors(truth, d.phones)]
    if with_sphinx:
        pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
        try:
            s = Sphinx().align(pcm, word_tokens(text))
            out["pocketsphinx"] = [round(float(v), 4) for v in boundary_errors(truth, s.phones)]
        except SphinxError as exc:
            out["pocketsphinx_error"] = str(exc)
    return out

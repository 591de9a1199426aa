"""scripts/tune_defaults.py: scores a grid on a chosen split and picks the lowest lip error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures import make_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_tune_defaults_scores_every_setting_and_picks_the_lowest_error(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=3, n_val=2, seconds=2.0)
    model = tmp_path / "m.safetensors"
    arch = json.dumps({"layers": 1, "head_blocks": 1, "head_dim": 64, "model_dim": 64, "audio_dim": 64})
    r = subprocess.run([sys.executable, "-m", "inference_core", "train", "--data", str(data), "--out", str(model),
                        "--iters", "2", "--batch", "2", "--quiet", "--arch", arch],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "tune.json"
    r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                        "--split", "val", "--steps", "1,2", "--guidance", "1.0,2.0", "--temperature", "0.3",
                        "--threads", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert {(r["steps"], r["guidance"]) for r in rows} == {(1, 1.0), (1, 2.0), (2, 1.0), (2, 2.0)}
    key = "lve_mm" if "lve_mm" in rows[0] else "mouth_mae"
    best = min(rows, key=lambda r: r[key])
    assert res["best"] == {"steps": best["steps"], "guidance": best["guidance"], "temperature": 0.3}
    assert res["split"] == "val" and res["utterances"] == 2
    assert "grid: steps {1,2} x guidance {1.0,2.0}" in res["selection"]
    # with real recordings every row gets lip_metrics' figures and the rule picks by closure
    lip_metrics = ROOT.parent / "shared" / "tools" / "lip_metrics.py"
    if lip_metrics.exists():
        import soundfile as sf

        from inference_core.data.corpus.tts import speak_espeak

        real = tmp_path / "real"
        real.mkdir()
        sp = speak_espeak("en-us+m3", "Bob made a map of the bay.", 160, 50, 50)
        sf.write(real / "a.wav", sp.audio, 16000, subtype="PCM_16")
        (real / "a.json").write_text(json.dumps({"phones": [list(p) for p in sp.phones], "speaker": "m3",
                                                 "language": "en", "sex": "M"}))
        r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                            "--split", "val", "--steps", "1", "--guidance", "1.0,2.0", "--temperature", "0.3",
                            "--threads", "1", "--lipsync", str(real), "--lve-slack", "10", "--out", str(out)],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert r.returncode == 0, r.stderr
        res = json.loads(out.read_text())
        closure = {row["guidance"]: row["real"]["bilabial_closure_rate"] for row in res["rows"]}
        assert all(0 <= c <= 1 for c in closure.values()) and res["rows"][0]["real"]["n_utterances"] == 1
        assert closure[res["best"]["guidance"]] == max(closure.values()) and "real-speech" in res["selection"]
        # the upper face's temperature chosen on the real recordings' blinks, against the teacher's rate there
        r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                            "--split", "val", "--steps", "1", "--guidance", "1.0", "--temperature", "0.3",
                            "--temperature-upper", "0.5,1.0", "--threads", "1", "--lipsync", str(real),
                            "--upper-on", "real", "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        res = json.loads(out.read_text())
        assert res["teacher_blinks_per_minute_real"] >= 0 and str(real) in res["upper_selection"]
        assert [u["temperature_upper"] for u in res["upper_rows"]] == [0.5, 1.0]
        assert all("blinks_per_minute" in u["real"] for u in res["upper_rows"])
    # choosing on real voices without real recordings is a usage error
    r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                        "--upper-on", "real"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "--upper-on real needs --lipsync" in r.stderr
    # a split without utterances is an error, not an empty table
    r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                        "--split", "tune"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "no 'tune' utterances" in r.stderr


def test_upper_temperature_rule_wants_complete_blinks_at_the_reference_rate():
    sys.path.insert(0, str(ROOT / "scripts"))
    from tune_defaults import choose_upper

    def row(tu, rate, complete, fdd=0.1):
        return {"temperature_upper": tu, "blinks_per_minute": rate, "blink_completeness": complete,
                "blinks_per_minute_reference": 17.0, "upper_fdd": fdd}

    rows = [row(0.1, 2.3, 0.9), row(0.5, 9.0, 0.85), row(0.7, 15.0, 0.6), row(1.0, 20.0, 0.82)]
    assert choose_upper(rows)["temperature_upper"] == 1.0      # 20/17 beats 9/17; 15/min is too incomplete
    assert choose_upper([row(0.1, 0.0, None)]) is None                     # nothing blinks
    # none complete enough: the rate nearest the reference, ties to the more complete blinks
    assert choose_upper([row(0.1, 2.0, 0.7), row(0.3, 15.0, 0.5), row(1.0, 40.0, 0.6)])["temperature_upper"] == 0.3
    assert choose_upper([row(0.5, 17.0, 0.5), row(0.7, 17.0, 0.6)])["temperature_upper"] == 0.7
    tie = [row(0.5, 17.0, 0.9, fdd=0.2), row(0.7, 17.0, 0.9, fdd=0.1)]
    assert choose_upper(tie)["temperature_upper"] == 0.7
    # complete blinks count only at a natural rate (8-30 a minute): the 8-step tuning run's rows
    at8 = [row(0.75, 7.7, 0.806), row(1.0, 19.8, 0.756), row(1.25, 36.1, 0.794), row(1.5, 49.2, 0.788)]
    assert choose_upper([dict(r, blinks_per_minute_reference=24.0) for r in at8])["temperature_upper"] == 1.0


def test_upper_rule_on_real_voices_reads_the_real_blinks_against_the_teachers_rate():
    sys.path.insert(0, str(ROOT / "scripts"))
    from tune_defaults import choose_upper, upper_rows_on_real

    def row(tu, tts_rate, tts_complete, real_rate, real_complete, fdd=0.1):
        return {"temperature_upper": tu, "blinks_per_minute": tts_rate, "blink_completeness": tts_complete,
                "blinks_per_minute_reference": 24.0, "upper_fdd": fdd,
                "real": {"blinks_per_minute": real_rate, "blink_completeness": real_complete}}

    # TTS blinks twice as often as the real voices at the same temperature (stop 32's H2a)
    rows = [row(0.75, 12.8, 0.84, 6.4, 0.86), row(1.0, 28.5, 0.76, 14.0, 0.82), row(1.25, 42.5, 0.78, 21.0, 0.70)]
    assert choose_upper(rows)["temperature_upper"] == 0.75               # on TTS: 1.0's blinks are too partial
    real = upper_rows_on_real(rows, teacher_rate=22.6)
    assert choose_upper(real)["temperature_upper"] == 1.0                # real: 6.4 is too few, 21 too partial
    assert real[0]["blinks_per_minute"] == 6.4 and real[0]["blinks_per_minute_reference"] == 22.6
    assert rows[0]["blinks_per_minute"] == 12.8                          # the TTS rows are left as they were
    assert real[1]["upper_fdd"] == 0.1                                   # ties still go to the TTS dynamics


def test_real_speech_rule_takes_the_most_closure_within_the_lip_error_slack():
    sys.path.insert(0, str(ROOT / "scripts"))
    from tune_defaults import choose_mouth

    def row(g, lve, closure, ratio=2.0):
        return {"guidance": g, "lve_mm": lve, "real": {"bilabial_closure_rate": closure, "open_vowel_gap_ratio": ratio}}

    rows = [row(1.0, 4.00, 0.60), row(1.5, 4.10, 0.75), row(2.0, 4.20, 0.90), row(2.5, 4.30, 0.75, 3.0)]
    assert choose_mouth(rows, "lve_mm", None)["guidance"] == 1.0        # without real speech: lowest error
    assert choose_mouth(rows, "lve_mm", 0.03)["guidance"] == 1.5        # 2.0 closes more but is 5 % worse
    assert choose_mouth(rows, "lve_mm", 0.05)["guidance"] == 2.0
    rows[3]["lve_mm"] = 4.10                                            # a closure tie goes to the larger ratio
    assert choose_mouth(rows, "lve_mm", 0.03)["guidance"] == 2.5


def test_upper_steps_rule_takes_the_most_steps_within_the_speed_budget(monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import choose_upper_steps as c

    assert c.choose({2: 0.03, 4: 0.036, 6: 0.044, 8: 0.046}, 0.045) == 6
    assert c.choose({2: 0.05, 4: 0.06}, 0.045) == 2            # none within: the cheapest
    fake = {2: 0.030, 4: 0.041, 6: 0.052}
    monkeypatch.setattr(c, "bench", lambda k, model: {"rtf": fake[k], "rtf_cpu": fake[k],
                                                      "first_frame_latency_ms": 110.0, "threads": 1})
    out = c.main(["--steps", "2,4,6", "--rounds", "2"])
    assert out == 0


def test_style_rule_takes_the_best_confirmed_style_that_keeps_every_figure():
    sys.path.insert(0, str(ROOT / "scripts"))
    import choose_style as c

    def fig(closure, ratio=2.8, r=0.43, rounding=2.0, shut=0.10):
        f = {"bilabial_closure_rate": closure, "open_vowel_gap_ratio": ratio, "gap_openness_corr_speech": r,
             "rounding_ratio": rounding, "open_vowel_closed_frac": shut}
        return dict(f, score=c.score(f))

    assert c.score(fig(0.85, 4.0, 0.55, 3.0)) == 1.0 == c.score(fig(0.95, 5.0, 0.6, 3.5))  # capped at the targets
    scan = {"generic": fig(0.76), "shut": fig(0.90, shut=0.2),          # opens too little on open vowels
            "unround": fig(0.88, rounding=1.8),                         # buys closure with rounding
            "a": fig(0.84, 3.3), "b": fig(0.83, 3.2), "c": fig(0.80)}
    confirm = {"generic": fig(0.78), "a": fig(0.85, 3.5), "b": fig(0.86, 3.6), "c": fig(0.79)}
    asked: list[list[str]] = []

    def confirm_with(names):
        asked.append(names)
        return {n: confirm[n] for n in names}

    out = c.choose(scan, confirm_with, 2)
    assert out["scan_eligible_ranked"] == ["a", "b", "c"] and asked == [["generic", "a", "b"]]
    assert out["chosen"] == "b"                                         # the confirming set decides
    lve = {"generic": 4.0, "b": 4.2, "a": 4.1}                          # b is 5 % worse on TTS: a
    assert c.choose(scan, confirm_with, 2, lve.__getitem__)["chosen"] == "a"
    assert c.choose({"generic": fig(0.76), "shut": fig(0.9, shut=0.2)}, confirm_with, 2)["chosen"] == "generic"

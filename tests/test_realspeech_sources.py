"""The real-speech builder's parts on their own: aligners, transcripts, licences, voice tables,
splits, the Fish Fillets and Tux Paint readers (tests/test_realspeech.py builds whole sets)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from inference_core.data.realspeech import align, dtw, split, text
from inference_core.data.realspeech import sources as src
from realspeech_fixtures import CORE_COPYRIGHT, needs_sphinx, needs_tools


@needs_tools
@needs_sphinx
def test_aligners_find_known_boundaries_on_synthetic_speech():
    """espeak-ng speech with known phone times (another voice, another rate, inserted pauses)."""
    res = align.synthetic_check("Please enter your mailbox number followed by the pound key.", "gmw/en-US",
                                "en", seed=0, index=1, with_sphinx=True)
    dtw_err, sph_err = np.array(res["dtw"]), np.array(res["pocketsphinx"])
    assert len(dtw_err) >= 30 and len(sph_err) >= 30
    assert np.median(dtw_err) < 0.04 and np.median(sph_err) < 0.04, (np.median(dtw_err), np.median(sph_err))
    # the measure can fail: the same truth against a timeline shifted by 80 ms
    x, truth = align.synthetic_pair(res["text"], "gmw/en-US", "en", 0, 1)
    shifted = [(lab, s + 0.08, e + 0.08) for lab, s, e in truth]
    assert np.median(align.boundary_errors(truth, shifted)) > 0.07


@needs_tools
def test_dtw_aligner_carries_french_boundaries():
    x, truth = align.synthetic_pair("Veuillez composer le numéro de votre boîte vocale.", "roa/fr", "fr", 0, 0)
    res = align.dtw_align(x, "Veuillez composer le numéro de votre boîte vocale.", "fr", "roa/fr+f2")
    err = align.boundary_errors(truth, res.phones)
    assert len(err) >= 25 and np.median(err) < 0.04
    assert res.phones[0][1] == 0.0 and abs(res.phones[-1][2] - len(x) / src.SR) < 1e-3


@pytest.mark.parametrize("pen", [0.0, 0.5])
def test_dtw_matches_the_plain_recurrence(pen):
    rng = np.random.default_rng(3)
    for n, m in ((1, 1), (1, 5), (6, 1), (7, 9), (12, 5)):
        c = rng.random((n, m))
        d = np.full((n + 1, m + 1), np.inf)
        for i in range(n):
            for j in range(m):
                if i == 0 and j == 0:
                    d[1, 1] = 2 * c[0, 0]
                    continue
                d[i + 1, j + 1] = min(d[i, j] + 2 * c[i, j], d[i, j + 1] + c[i, j] + pen, d[i + 1, j] + c[i, j] + pen)
        acc = dtw.accumulate(c, pen)
        assert np.allclose(acc, d[1:, 1:])
        pi, pj = dtw.backtrack(acc, c, pen)
        assert (pi[0], pj[0], pi[-1], pj[-1]) == (0, 0, n - 1, m - 1)
        steps = [tuple(s) for s in np.stack([np.diff(pi), np.diff(pj)], 1)]
        assert all(s in {(1, 1), (1, 0), (0, 1)} for s in steps)
        total = 2 * c[0, 0] + sum((2 * c[i, j] if s == (1, 1) else c[i, j] + pen)
                                  for s, i, j in zip(steps, pi[1:], pj[1:]))
        assert np.isclose(total, acc[-1, -1])  # the path found is one that costs the optimum


def test_tidy_tiles_the_duration():
    ph = align.tidy([("p", 0.05, 0.05), ("aa", 0.05, 0.2), ("sil", 0.2, 0.21), ("t", 0.21, 0.5)], 0.6)
    assert ph[0] == ("sil", 0.0, 0.05) and ph[-1][0] == "sil" and ph[-1][2] == 0.6
    assert [p[0] for p in ph] == ["sil", "p", "aa", "t", "sil"]  # the 10 ms pause went to "aa"
    assert all(e - s >= 0.01 - 1e-9 for _, s, e in ph)
    assert all(abs(a[2] - b[1]) < 1e-9 for a, b in zip(ph, ph[1:]))


def test_language_rewrites_before_map_espeak():
    assert [p[0] for p in align.espeak_to_arpabet([("B", 0, 0.1), ("a", 0.1, 0.2)], "es")] == ["b", "ae"]
    ru = align.espeak_to_arpabet([("ja", 0, 0.2), ("y", 0.2, 0.3), ("(en)", 0.3, 0.31)], "ru")
    assert [p[0] for p in ru] == ["y", "ae", "ih"] and ru[-1][2] == 0.31


# ----------------------------------------------------------------------------- text, sources, split

def test_transcript_cleaning():
    assert text.clean("beep", "[this is a simple beep tone]", "en") == (None, "not_speech")
    assert text.clean("silence/3", "(3 seconds of silence)", "en") == (None, "not_speech")
    assert text.clean("vm-intro", "Please leave a message. (simple tone sound plays)", "en") == \
        ("Please leave a message.", "ok")
    assert text.clean("x", "Sus saludos [temporales] estan", "es") == (None, "uncertain_transcript")
    assert text.clean("letters/at", "at [@]", "en") == ("at", "ok")
    assert text.clean("vm-star", "Press * or #.", "en")[0] == "Press star or pound ."
    assert text.clean("conf-adminmenu", "conf-adminmenu: Нажмите 1", "ru")[0] == "Нажмите 1"
    assert text.words("You'd press 28.8, intra-Asterisk!") == ["you'd", "press", "28.8", "intra", "asterisk"]


def test_transcript_and_copyright_parsing(tmp_path):
    p = tmp_path / "t.txt.gz"
    p.write_bytes(gzip.compress("\ufeff; comment\n\nagent-pass: Password.\ndigits/0: cero\ndigits/0: diez\n"
                                "digits/1: uno\n".encode()))
    tr = src.read_transcript(p)
    assert tr.texts == {"agent-pass": "Password.", "digits/0": "cero", "digits/1": "uno"}
    assert tr.duplicates == {"digits/0"}
    assert src.dep5_stanza(CORE_COPYRIGHT, "fr")["Copyright"] == "2006-2008, June Wallack"
    assert src.dep5_stanza(CORE_COPYRIGHT, "es")["Copyright"] == "2003-2010, Allison Smith"


def test_voice_table_names_one_person_once():
    by_key = {v.key: v for v in src.VOICES}
    assert by_key["allison_smith-en"].speaker == by_key["allison_smith-es"].speaker
    assert len({v.key for v in src.VOICES}) == len(src.VOICES) == 21
    assert {v.language for v in src.VOICES} == set(src.CORE_LANGS) | {"cs", "nl", "be", "bg", "ca", "da", "el", "ro"}
    # one person, one speaker id: the Tux Paint readers are nobody else in the table
    people = [v.person for v in src.VOICES if v.corpus != "asterisk" or v.speaker != "allison_smith"]
    assert len(people) == len(set(people))


def test_speaker_rule_on_the_real_voices():
    f = split.SpeakerFacts
    facts = [f("allison_smith", ("en", "es"), "F", True), f("june_wallack", ("fr",), "F", True),
             f("carlo_flora", ("it",), "M", True), f("ivrvoice_ru", ("ru",), "F", True),
             f("armelle_desjardins", ("fr",), "F", False), f("july_jimenez", ("es",), "F", False),
             f("paola_dal_zot", ("it",), "F", False)]
    rule = split.choose_speakers(facts, seed=0)
    assert rule["val"] == ["allison_smith", "armelle_desjardins", "carlo_flora", "ivrvoice_ru"]
    assert rule["train"] == ["july_jimenez", "june_wallack", "paola_dal_zot"] and not rule["constraints_unmet"]
    # without the 8 kHz French voice, June is the only French speaker: held out, and it is said
    rule = split.choose_speakers([x for x in facts if x.speaker != "armelle_desjardins"], seed=0)
    assert "june_wallack" in rule["val"] and "train_has_a_wideband_speaker" in rule["constraints_unmet"]


def test_groups_and_heldout_share():
    names = ([f"vm-{w}" for w in ("intro", "review", "review-urgent", "goodbye", "login", "password")]
             + [f"digits/{k}" for k in range(30)] + [f"conf-{k}" for k in range(5)]
             + ["agent-pass", "agent-user", "activated", "added", "auth-incorrect"] + [f"q{k}" for k in range(20)])
    g = split.group_map(names)
    assert g["digits/7"] == "digits/" and g["conf-3"] == "conf" and g["agent-pass"] == "agent"
    held = split.heldout_groups(g, seed=0)
    share = sum(1 for x in g.values() if x in held) / len(g)
    assert 0.15 <= share <= 0.25 and "digits/" not in held  # too big a group is never held out
    assert held == split.heldout_groups(g, seed=0) and held != split.heldout_groups(g, seed=1)


# ----------------------------------------------------------------------------- Fish Fillets

FILLETS_LUA = r'''
-- a comment with dialogId("nope", "font_big", "not a call")
--[[ a long comment
dialogId("nope2", "font_small", "no") ]]
dialogId("kor-m-hello", "font_small", "Hello.")
dialogStr("Hallo, ik ben \"de kleine\" vis.")

dialogId("kor-v-answer", "font_big", "Hi.")
dialogStr(
    "Ik zie je\tnu.")
dialogId("kor-v-untranslated", "font_big", "No translation.")
dialogId("kor-m-wrongfont", "font_big", "Odd.")
dialogStr("Dit staat in het verkeerde lettertype.")
dialogId("kor-x-parrot", "font_parrot", "Polly.")
dialogStr("Lorre!")
dialogId("kor-m-esc", 'font_small', 'Esc.')
dialogStr('Een \65 en een \'quote\'')
'''


def test_fillets_dialog_files_parse():
    from inference_core.data.realspeech import fillets as fl

    ds = {d.id: d for d in fl.parse_dialogs(FILLETS_LUA, "script/kor/dialogs_nl.lua")}
    assert set(ds) == {"kor-m-hello", "kor-v-answer", "kor-v-untranslated", "kor-m-wrongfont",
                       "kor-x-parrot", "kor-m-esc"}  # nothing from the comments
    assert ds["kor-m-hello"].text == 'Hallo, ik ben "de kleine" vis.' and ds["kor-m-hello"].font == "font_small"
    assert ds["kor-v-answer"].text == "Ik zie je\tnu."  # a string on the next line
    assert ds["kor-v-untranslated"].text is None  # no dialogStr before the next dialogId
    assert ds["kor-m-esc"].text == "Een A en een 'quote'"  # decimal and quote escapes
    assert [fl.role_of(i) for i in ("kor-m-hello", "kor-v-answer", "kor-x-parrot", "help1", "a-m-v-b")] == \
        ["small", "big", "", "", ""]


def test_fillets_prompts_roles_and_skips(tmp_path):
    from inference_core.data.realspeech import fillets as fl

    v = {x.key: x for x in src.VOICES}["fillets_nl_small_fish-nl"]
    root = tmp_path / "pkg"
    script = root / fl.SCRIPT_DIR / "kor"
    script.mkdir(parents=True)
    (script / "dialogs_nl.lua").write_text(FILLETS_LUA + 'dialogId("kor-m-ouch", "font_small", "Ouch!")\n'
                                           'dialogStr("Au! Ha ha ha!")\n', encoding="utf-8")
    sound = root / v.sound_dir
    for rel in ("kor/nl/kor-m-hello", "kor/nl/kor-m-wrongfont", "kor/nl/kor-m-ouch", "kor/nl/kor-m-esc",
                "kor/nl/kor-m-missing", "kor/nl/kor-v-answer", "kor/cs/kor-m-hello", "share/border/nl/bar-m-x"):
        (sound / rel).parent.mkdir(parents=True, exist_ok=True)
        (sound / rel).with_suffix(".ogg").write_bytes(b"")
    prompts = fl.list_prompts(root, v)
    assert sorted(prompts) == ["kor/kor-m-esc", "kor/kor-m-hello", "kor/kor-m-missing", "kor/kor-m-ouch",
                               "kor/kor-m-wrongfont", "share/border/bar-m-x"]  # the small fish, in Dutch
    assert fl.group_of("kor/kor-m-hello") == "fillets/kor" and fl.group_of("share/border/bar-m-x") == "fillets/share"
    tr, dialogs = fl.read_dialogs(root, "nl")
    texts, skipped = fl.texts_for(v, prompts, tr, dialogs)
    assert texts == {"kor/kor-m-hello": "Hallo, ik ben de kleine vis.", "kor/kor-m-esc": "Een A en een quote"}
    assert skipped == {"kor/kor-m-missing": "no_transcript", "kor/kor-m-ouch": "not_speech",
                       "kor/kor-m-wrongfont": "role_font_mismatch", "share/border/bar-m-x": "no_transcript"}


def test_dialog_lines_that_are_not_words_are_skipped():
    assert text.clean_dialog("Ha ha ha! Au!", "nl") == (None, "not_speech")
    assert text.clean_dialog("MUAHHHH", "cs") == (None, "not_speech")
    assert text.clean_dialog("...tak...?", "cs") == (None, "mostly_punctuation")
    assert text.clean_dialog("Hmmm... těžko.", "cs") == (None, "non_lexical")
    assert text.clean_dialog("Pssst, ticho!", "cs") == (None, "non_lexical")
    assert text.clean_dialog("Heeeeeel 'mooi' gedaan.", "nl") == ("Heel mooi gedaan.", "ok")
    assert text.clean_dialog("Dat is 't beste.", "nl") == ("Dat is 't beste.", "ok")  # an apostrophe, kept
    assert text.clean_dialog("Vlk a smrt.", "cs") == ("Vlk a smrt.", "ok")  # vowelless Czech words are words


def test_fillets_levels_and_leakage_check():
    from types import SimpleNamespace as NS

    levels = [f"level{k:02d}" for k in range(20)]
    held = split.heldout_levels(levels, seed=0)
    assert len(held) == 5 and held == split.heldout_levels(levels, seed=0) != split.heldout_levels(levels, seed=1)

    def k(spl: str, speaker: str, group: str) -> NS:
        return NS(split=spl, group=group, vd=NS(voice=NS(speaker=speaker)))

    clean = [k("train", "a", "g1"), k("tune", "a", "g2"), k("val", "b", "g2"), k("val_seen_text", "b", "g1")]
    assert not any(split.leakage(clean).values())
    bad = split.leakage(clean + [k("train", "b", "g2")])
    assert bad["speakers_in_train_and_heldout"] == ["b"] and bad["groups_in_train_and_heldout"] == ["g2"]


def test_voice_table_fillets_split_is_fixed_both_sexes_each_side():
    fish = [v for v in src.VOICES if v.corpus == "fillets"]
    side = {(v.fixed_split, v.sex_doc) for v in fish}
    assert side == {("val", "F"), ("val", "M"), ("train", "F"), ("train", "M")}
    assert {v.language for v in fish if v.fixed_split == "val"} == {"cs", "nl"}
    assert all(v.licence == "GPL-2" and "Danihelka" in v.credit for v in fish)


# ----------------------------------------------------------------------------- Tux Paint

def test_tuxpaint_texts_and_prompts(tmp_path):
    from inference_core.data.realspeech import tuxpaint

    voice = next(v for v in src.VOICES if v.key == "tuxpaint_es-es")
    base = tmp_path / voice.sound_dir
    for rel, data in {"a/frog_desc_es.ogg": b"take1", "a/frog-1_desc_es.ogg": b"take1",
                      "b/toad_desc_es.ogg": b"take2", "b/toad_desc.ogg": b"english",
                      "b/toad_desc_es_old.ogg": b"no"}.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    (base / "a/frog.txt").write_text("A frog.\nes.utf8=Una «rana».\n", encoding="utf-8")
    (base / "a/frog-1.txt").write_text("A frog.\nes.utf8=Otra rana.\n", encoding="utf-8")
    (base / "b/toad.txt").write_text("A toad.\nes_MX.utf8=Un sapo.\n", encoding="utf-8")
    prompts = tuxpaint.list_prompts(tmp_path, voice)
    assert sorted(prompts) == ["a/frog", "b/toad"]   # frog-1 is the same take; English and odd names left out
    tr, texts, skipped = tuxpaint.texts_for(tmp_path, voice, prompts)
    assert texts == {"a/frog": "Una rana."} and skipped == {"b/toad": "no_transcript"}
    assert tr.texts == {"a/frog": "Una «rana»."}
    assert tuxpaint.clean("Una moneda de 1 euro.") == (None, "uncertain_transcript")
    assert tuxpaint.clean("Un sapo (verde).") == (None, "uncertain_transcript")
    assert tuxpaint.clean(" ... ") == (None, "not_speech")
    assert tuxpaint.clean("George,  el  mero.") == ("George, el mero.", "")
    assert tuxpaint.group_of("animals/fish/groper") == "tuxpaint/animals/fish"
    en = next(v for v in src.VOICES if v.key == "tuxpaint_es-es")
    assert tuxpaint.read_description(base / "a/frog.txt", "en") == "A frog." and en.language == "es"


def test_tuxpaint_credit_must_still_be_in_the_changelog(tmp_path):
    from inference_core.data.realspeech import tuxpaint

    voice = next(v for v in src.VOICES if v.key == "tuxpaint_fr-fr")
    log = tmp_path / tuxpaint.CHANGELOG
    log.parent.mkdir(parents=True)
    log.write_bytes(gzip.compress("+ Descriptive sounds by GCI students\n   + French:      PaulK\n".encode()))
    assert tuxpaint.check_credit(voice, tmp_path, "tuxpaint-stamps-default")[0]["line"] == "French: PaulK"
    log.write_bytes(gzip.compress(b"+ French: somebody else\n"))
    with pytest.raises(src.SourceError, match="no longer says"):
        tuxpaint.check_credit(voice, tmp_path, "tuxpaint-stamps-default")
    unnamed = next(v for v in src.VOICES if v.key == "tuxpaint_ca-ca")
    assert tuxpaint.check_credit(unnamed, tmp_path, "tuxpaint-stamps-default") == []


def test_tuxpaint_drops_what_sounds_like_a_heldout_prompt():
    from types import SimpleNamespace as NS

    def k(uid: str, spl: str, corpus: str, phones: list[str]) -> NS:
        return NS(uid=uid, split=spl, vd=NS(voice=NS(corpus=corpus)),
                  phones=[("sil", 0, 0.1)] + [(p, 0.1, 0.2) for p in phones] + [("sil", 0.2, 0.3)])

    kept = [k("digit_1", "val", "asterisk", ["w", "ah1", "n"]), k("tp_one", "train", "tuxpaint", ["W", "ah", "n"]),
            k("tp_frog", "train", "tuxpaint", ["f", "r", "aa", "g"]), k("ast_one", "train", "asterisk", ["w", "ah", "n"]),
            k("tune_no", "tune", "fillets", ["n", "ow"]), k("tp_no", "train", "tuxpaint", ["n", "ow"])]
    assert split.same_phones_as_heldout(kept, corpus="tuxpaint") == {"tp_one", "tp_no"}


def test_voice_table_tuxpaint_voices_only_train():
    tux = [v for v in src.VOICES if v.corpus == "tuxpaint"]
    assert len(tux) == 9 and all(v.fixed_split == "train" and v.licence == "GPL-2" for v in tux)
    assert len({v.speaker for v in tux}) == 9
    held = {v.person for v in src.VOICES if v.fixed_split == "val"} | {"Allison Smith", "June Wallack"}
    assert not held & {v.person for v in tux}
    assert all((v.credit_line == "") == ("not named" in v.person) for v in tux)


def test_select_voices_by_key_or_source():
    from inference_core.data.realspeech.sources import select_voices

    assert select_voices(None) == list(src.VOICES)
    shipped = select_voices("asterisk,fillets")
    assert {v.corpus for v in shipped} == {"asterisk", "fillets"} and len(shipped) == 12
    assert [v.key for v in select_voices("tuxpaint_fr-fr,tuxpaint,allison_smith-en")][:2] == ["tuxpaint_fr-fr", "tuxpaint_be-be"]
    assert len(select_voices("tuxpaint,tuxpaint_fr-fr")) == 9
    with pytest.raises(SystemExit, match="unknown voice"):
        select_voices("asterisk,klingon")

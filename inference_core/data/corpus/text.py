"""A deterministic generator of varied English sentences for the TTS corpus.

Why a grammar instead of a text dump: no text corpus can be downloaded here, and
a grammar lets us steer the phoneme mix — plenty of bilabials (p b m),
labiodentals (f v), rounded (u w o) and spread (i e) vowels, the contrasts the
lip-sync model must get right — while still giving questions, lists, numbers,
exclamations, short and long sentences. All randomness comes from the caller's
``numpy.random.Generator``, so a seed fixes the text.
"""

from __future__ import annotations

import numpy as np

NAMES = """Bob Mabel Pam Ben Emma Molly Paul Fiona Vivian Owen Ruby Mia Peter Bill Maria Tom Sophie
Hugo Lou Woody June Eve Steve Pete Vera Phil Matthew Beth Kevin Lucy Zoe Joe Noah Chloe Abigail
Jim Kim Eli Rosa Igor Maya Oliver Isabel Boris Penny Wendy Muriel Bruno Frieda""".split()
PLACES = """Boston Memphis Bombay Vienna Phoenix Birmingham Moscow Peru Cuba Toronto Beijing Munich
Budapest Oporto Quebec Geneva Lima Tokyo Nepal Vermont Bremen Fiji Madrid Oslo Dublin
Melbourne Buffalo Wimbledon Plymouth Hamburg""".split()
NOUNS = """apple baby ball balloon band bank basket bath beach bean bear bed bee bell bike bird boat
book boot bottle box bread bridge brush bubble bucket bus butter button cabin cake camera cap car
carpet cat chair cheese child church clock cloud coat coffee coin cook cow cup door dream drum duck
egg engine eye face farm father feather fence field film fish flag floor flower food foot fork fox
friend frog fruit garden gate gift girl glass glove goat gold goose grape grass guitar hammer hand
hat heart hill horse house ice island jacket jam jar jeep juice key king kitchen kite knife lamp
lemon letter lion map market meadow meal melon milk mirror money monkey moon morning mother mountain
mouse mouth movie muffin museum music nail needle nest net night noodle nose ocean office onion
orange oven owl paper parcel park party peach pen pencil penguin pepper piano picture pie pig pillow
pipe plane plate pocket pony pool potato puppy puzzle queen rabbit radio rain river road robot rock
roof room rope rose ruby school sheep ship shoe shop smile snow soap sock soup spoon spring star
stove street sugar summer sun supper table teacher tea tiger toast tomato tooth tower town toy train
tree truck tube tulip umbrella valley van vase violin voice wagon wall watch water wave weekend whale
wheel window winter wolf wood wool world yard zoo""".split()
ADJECTIVES = """big small blue brown bumpy busy calm cheap clean cool cozy deep easy empty fancy fast
fine flat fluffy foggy free fresh full funny furry gloomy good green happy heavy huge humble marvellous
massive mellow merry moody muddy new old pale peaceful perfect pink plain plump polite poor pretty
proud purple quiet quick rough round ruby-red sleepy smooth soft smooth sweet tiny true tidy useful
vague vast velvet violet warm weak wet white wide wild wise wooden woolly yellow young""".split()
VERBS_PAST = """bought borrowed brought built buried moved mopped painted packed picked poured pushed
found fixed fed filled folded followed viewed visited removed loved waved washed wove wrapped used
fetched opened covered cleaned cooked dropped grabbed hid kept lifted made mended missed needed
ordered peeled played polished posted proved pulled reached repaired returned sold shipped stored
swept threw took tossed watched wiped""".split()
VERBS_BASE = """buy borrow bring build bury move mop paint pack pick pour push find fix feed fill fold
follow view visit remove love wave wash weave wrap use fetch open cover clean cook drop grab hide
keep lift make mend miss need order peel play polish post prove pull reach repair return sell ship
store sweep throw take toss watch wipe""".split()
ADVERBS = """before maybe probably quietly quickly slowly happily barely softly bravely boldly
perfectly properly promptly smoothly truly very often sometimes early proudly evenly gently
firmly""".split()
TIMES = ["yesterday", "today", "tonight", "this morning", "on Monday", "on Tuesday", "on Wednesday",
         "on Thursday", "on Friday", "last week", "at noon", "in the evening", "by midnight",
         "every summer", "before breakfast", "after supper", "in November", "in February"]
FEELINGS = ["pleased", "surprised", "puzzled", "amused", "moved", "bored", "happy", "furious",
            "thrilled", "worried", "proud", "relieved", "baffled", "sleepy"]
INTERJECTIONS = ["Oh", "Wow", "Well", "Hmm", "Oops", "Hey", "Look", "Boy", "Oh boy", "Yes", "No",
                 "Whoa", "Phew", "Ooh", "Mmm", "Okay"]
# Alliterative and minimal-pair stock phrases: dense p/b/m, f/v, w/oo, ee/ay contrasts.
TONGUE = [
    "Peter Piper picked a peck of pickled peppers",
    "Bobby brought a big blue bubble bath",
    "Mama made maple muffins on Monday morning",
    "five fine violins filled the vast valley",
    "very few visitors viewed the vivid film",
    "we were wary of the wet woolly wolves",
    "who knew the blue moon would move so soon",
    "Oh, how the old boat rolled over the foam",
    "see the green bees feed in the sweet meadow",
    "each eager eagle keeps the evening breeze",
    "Phil fixed the puffy pillow for the baby",
    "Woody wore warm wool boots to the pool",
    "pop the pumpkin pie back in the pan",
    "my mom baked a pumpkin pie, maybe two",
    "the wave moved over the whole wide world",
    "Beth bit the big, bumpy blueberry",
    "May we meet beneath the maple tree by the beach",
    "few flew over the foggy fjord in February",
    "move the boomerang through the room, Lou",
    "Vera's favourite view is the vineyard above the river",
]

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _np(rng: np.random.Generator, plural_ok: bool = True) -> str:
    """A noun phrase: 'the old boat', 'a purple umbrella', 'three fluffy muffins', 'Mabel'."""
    r = rng.random()
    noun = _pick(rng, NOUNS)
    if r < 0.12:
        return _pick(rng, NAMES)
    if r < 0.22 and plural_ok:
        n = int(rng.integers(2, 13))
        word = str(n) if rng.random() < 0.5 else ["two", "three", "four", "five", "six", "seven",
                                                    "eight", "nine", "ten", "eleven", "twelve"][n - 2]
        return f"{word} {_pick(rng, ADJECTIVES)} {_plural(noun)}"
    adj = _pick(rng, ADJECTIVES) + " " if rng.random() < 0.6 else ""
    det = _pick(rng, ["the", "the", "my", "your", "our", "his", "her", "that", "this"])
    if rng.random() < 0.25:
        det = _article(adj or noun)
    return f"{det} {adj}{noun}"


def _plural(noun: str) -> str:
    irregular = {"child": "children", "foot": "feet", "tooth": "teeth", "mouse": "mice",
                 "goose": "geese", "sheep": "sheep", "fish": "fish", "knife": "knives",
                 "wolf": "wolves", "leaf": "leaves"}
    if noun in irregular:
        return irregular[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def number_words(rng: np.random.Generator) -> str:
    """Numbers as text espeak reads naturally: years, prices, phone digits, counts."""
    r = rng.random()
    if r < 0.25:
        return str(int(rng.integers(1890, 2040)))
    if r < 0.45:
        return f"{int(rng.integers(1, 500))} dollars and {int(rng.integers(1, 99))} cents"
    if r < 0.6:
        return " ".join(_pick(rng, DIGITS) for _ in range(int(rng.integers(3, 7))))
    if r < 0.8:
        return f"{int(rng.integers(1, 100))} point {int(rng.integers(0, 10))}"
    return str(int(rng.integers(1, 100000)))


def _statement(rng: np.random.Generator) -> str:
    subj = _np(rng)
    r = rng.random()
    if r < 0.3:
        s = f"{subj} {_pick(rng, VERBS_PAST)} {_np(rng)} {_pick(rng, TIMES)}"
    elif r < 0.45:
        s = f"{subj} {_pick(rng, ADVERBS)} {_pick(rng, VERBS_PAST)} {_np(rng)} in {_pick(rng, PLACES)}"
    elif r < 0.6:
        s = f"{subj} was {_pick(rng, FEELINGS)} when {_np(rng)} {_pick(rng, VERBS_PAST)} {_np(rng)}"
    elif r < 0.72:
        s = f"we need to {_pick(rng, VERBS_BASE)} {_np(rng)} and {_pick(rng, VERBS_BASE)} {_np(rng)}"
    elif r < 0.82:
        s = f"{subj} costs {number_words(rng)}"
        if rng.random() < 0.5:
            s = f"the ticket to {_pick(rng, PLACES)} costs {number_words(rng)}"
    elif r < 0.9:
        s = f"in {number_words(rng)}, {subj} moved to {_pick(rng, PLACES)}"
    else:
        s = _pick(rng, TONGUE)
    if rng.random() < 0.2:
        s += f", because {_np(rng)} {_pick(rng, VERBS_PAST)} {_np(rng)}"
    return s[0].upper() + s[1:] + "."


def _question(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.3:
        s = f"did {_np(rng)} {_pick(rng, VERBS_BASE)} {_np(rng)} {_pick(rng, TIMES)}"
    elif r < 0.5:
        s = f"{_pick(rng, ['why', 'who', 'where', 'when', 'how'])} did {_np(rng)} {_pick(rng, VERBS_BASE)} {_np(rng)}"
    elif r < 0.65:
        s = f"would you {_pick(rng, VERBS_BASE)} {_np(rng)} for me"
    elif r < 0.8:
        s = f"is {_np(rng, plural_ok=False)} {_pick(rng, ADJECTIVES)} or {_pick(rng, ADJECTIVES)}"
    else:
        s = f"what is the number for {_pick(rng, PLACES)}, {number_words(rng)}"
    return s[0].upper() + s[1:] + "?"


def _list_sentence(rng: np.random.Generator) -> str:
    k = int(rng.integers(3, 6))
    items = [_np(rng) for _ in range(k)]
    lead = _pick(rng, ["Please buy", "We packed", "Bring", "She found", "I remember", "Move"])
    return f"{lead} {', '.join(items[:-1])}, and {items[-1]}."


def _exclaim(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{_pick(rng, INTERJECTIONS)}, {_np(rng)} is {_pick(rng, ADJECTIVES)}!"
    if r < 0.75:
        return f"{_pick(rng, INTERJECTIONS)}!"
    return f"{_pick(rng, TONGUE)}!"


def sentence(rng: np.random.Generator) -> str:
    """One sentence: statements, questions, lists, exclamations, very short replies."""
    r = rng.random()
    if r < 0.5:
        return _statement(rng)
    if r < 0.7:
        return _question(rng)
    if r < 0.82:
        return _list_sentence(rng)
    if r < 0.94:
        return _exclaim(rng)
    short = ["Yes.", "No.", "Maybe.", "Thank you.", "Of course.", "Wow!", "Pardon?", "Me too.",
             "Why not?", "Boom!", "Beep beep.", "Move over.", "Oh, wow.", "Fine.", "Very well."]
    return _pick(rng, short)


def read_text_file(path: str) -> list[str]:
    """Sentences for non-English corpora: one per non-empty line of a UTF-8 file."""
    with open(path, encoding="utf-8") as fh:
        lines = [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no sentences (one per line expected)")
    return lines

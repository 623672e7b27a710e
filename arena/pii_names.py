"""Person names without a cue ("I saw Kwame Mensah yesterday"): a run of capitalised name-shaped words
whose first word is a known given name, unless an eponym noun follows ("Ramsay Hunt syndrome").

The given names are the first-name list (46,000 names, many languages; GNU FDL) that the
`gender-guesser` package ships, read from the installed package: no download. Words that are also
ordinary English words at the start of a sentence ("Will", "May", "Can") are left out, from a stop list
built on the bank's real questions (tests/test_pii.py checks the false-alarm rate on them).

    from arena.pii_names import bare_names
    [(m.start, m.end) for m in bare_names("Can Grace O'Connell restart metformin?")]

Run as: python -m pytest tests/test_pii.py -q
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

# One name-shaped word, unambiguous (so linear): Smith, O'Connell, McDonald, MacKenzie, Al-Sayed, Zoë.
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
NAME_WORD = rf"[{_UPPER}](?:[{_LOWER}]++|['’][{_UPPER}][{_LOWER}]++)(?:[{_UPPER}][{_LOWER}]++)?(?:-[{_UPPER}][{_LOWER}]++)?"
_RUN = re.compile(rf"(?<![\w'’-]){NAME_WORD}(?:[ \t]+{NAME_WORD})*+")
_FOLLOWING = re.compile(r"(?:['’]s)?[ \t]+([A-Za-z]+)(?:[ \t]+([A-Za-z]+))?")
# endings of condition names ("hypotrichosis", "myopathy"); not "-ic", which "clinic" and "public" share
MEDICAL_SUFFIXES = (
    "osis",
    "itis",
    "emia",
    "aemia",
    "oma",
    "omas",
    "pathy",
    "plasia",
    "trophy",
    "algia",
    "ism",
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Nouns that make a capitalised phrase an eponym or a named thing, not a person: "Ramsay Hunt syndrome",
# "Sister Mary Joseph nodule", "Dr Foster's rule".
EPONYM_NOUNS = _words(
    """syndrome syndromes disease diseases sign signs rule rules triad law criteria score scores test tests
    phenomenon palsy nodule nodules procedure operation ulcer node nodes manoeuvre maneuver reflex reaction
    tumour tumor lymphoma sarcoma fracture classification scale method technique equation formula index
    protocol position line lines body bodies cell cells tear hernia pouch canal duct gland glands space
    membrane disorder anomaly malformation ring spot spots stain virus bacillus catheter tube effect
    approach incision deformity contracture stage staging grade type trial study guideline guidelines
    encephalopathy dementia ataxia dystrophy fever arthritis thyroiditis oesophagus esophagus foot
    coma ankle knee questionnaire inventory model curve diagram chart sequence block regimen cancer safety
    health care injury infection pain failure defect deficiency insufficiency poisoning surgery therapy
    treatment vaccine screening transplant transplantation medicine drug abuse use loss problem exam
    examination hypotrichosis myopathy neuropathy anemia anaemia theory valve prolapse pill analysis
    mutation measures outcomes outcome risk mania"""
)
# Given names that are also everyday words, or words that start clinical questions.
COMMON_WORDS = _words(
    """a an and are as at be been but by can could did do does for from had has have he her his how if in
    is it its may might my no not of on or our she should so than that the their then there these they
    this those to was we were what when where which who why will with would you your yes all any each
    many more most much new old one other same some such two very well also after again before being
    between both during first last next only over under up down out off once own just even ever never
    here january february march april may june july august september october november december monday
    tuesday wednesday thursday friday saturday sunday spring summer autumn winter christmas easter
    patient patients doctor nurse mother father son daughter baby child sister brother wife husband
    grace hope faith joy mark bill art rose iris ivy dawn penny sunny guy don ray pat sue page wade
    chase hunter lane major king prince rich sterling young long little love angel star sky river
    north south east west central general royal saint sir lord lady miss master dean chancellor
    bishop pope judge chief captain doc dr mr mrs ms mx prof ad ed al la le de du van von der den
    med pharm care cure clinic ward acute chronic normal blood heart brain liver kidney lung bone
    stone sugar salt iron gold silver grey gray green brown white black red blue pink"""
)


# Lower-case words inside a surname ("Mohammed Al Tamimi", "Jan van der Berg"), kept when a name follows.
NAME_PARTICLES = _words("al el van von de da di du le la der den ter dos das bin ibn ben abu")


@dataclass(frozen=True)
class NameSpan:
    start: int
    end: int


@functools.cache
def given_names() -> frozenset[str]:
    """The first names of gender-guesser's list (lower case), less COMMON_WORDS; empty if the package
    is not installed (then only names with a cue are found)."""
    try:
        data = resources.files("gender_guesser").joinpath("data", "nam_dict.txt").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset()
    names = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith("#") or len(line) < 30:
            continue
        for name in line[3:29].strip().replace("+", " ").split():
            if len(name) >= 2 and name.isalpha():
                names.add(name.lower())
    return frozenset(names - COMMON_WORDS)


def _eponym_word(word: str) -> bool:
    """A noun or adjective that names a condition or thing ("syndrome", "tumors", "myasthenic")."""
    lowered = word.lower()
    return (
        lowered in EPONYM_NOUNS
        or lowered.removesuffix("s") in EPONYM_NOUNS
        or lowered.endswith(MEDICAL_SUFFIXES)
    )


def bare_names(text: str) -> Iterator[NameSpan]:
    """Runs of 2-3 name-shaped words starting at a known given name, unless the run or the two words
    after it name a condition (an eponym: "Lambert Eaton myasthenic syndrome")."""
    known = given_names()
    for run in _RUN.finditer(text):
        words = [word.group() for word in re.finditer(NAME_WORD, run.group())]
        if any(_eponym_word(word) for word in words) or eponym_follows(text, run.end()):
            continue
        offsets = [word.start() for word in re.finditer(NAME_WORD, run.group())]
        for index, first in enumerate(words):
            if first.lower() not in known:
                continue
            kept = 0
            for position, other in enumerate(words[index + 1 : index + 4], start=index + 1):
                particle = other.lower() in NAME_PARTICLES and position + 1 < len(words)
                if (
                    (other.lower() in COMMON_WORDS and not particle)
                    or kept == 3
                    or (kept == 2 and not particle)
                ):
                    break
                kept += 1
            if kept:
                last = index + kept
                yield NameSpan(run.start() + offsets[index], run.start() + offsets[last] + len(words[last]))
                break


def eponym_follows(text: str, end: int) -> bool:
    """Whether one of the two words after `end` (past a possessive 's) names a condition."""
    following = _FOLLOWING.match(text, end)
    return bool(following) and any(word and _eponym_word(word) for word in following.groups())

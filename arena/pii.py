"""Rules that find patient-identifiable details in free text, and redact them.

Presidio (presidio-analyzer) installs here without changing any package, but its recognisers for
names and addresses need a spaCy model, and the official spaCy models are not on PyPI (they download
from GitHub, which this machine cannot reach; the PyPI copies, en-core-web-sm-*, are unofficial
re-uploads, and en-core-web-trf is a 999.9.9 placeholder), so the arena uses these rules. They cover the
HIPAA Safe Harbor identifiers a clinician can type: names (with a title, after "patient"/"my
patient,"/"name:"/a relative, possessive, and without a cue, arena/pii_names.py: a run starting at a
first name from gender-guesser's list, a run of words none of which is English, a surname shape, a
lone first name after "about"/"for", an unknown word before an age, lower-case particles inside a
name ("Pieter de Vries", "al-Rashid"), a lower-case name after a cue or opening a sentence), street
addresses (English, French, Spanish, Italian, Portuguese, German, Dutch and Nordic shapes, with the
post code and town after them; flats and PO boxes), towns and cities (GeoNames' places over 15,000
people, with a post code before them, arena/pii_places.py), counties, postcodes, ZIP and Canadian
postal codes, full dates (day-month-year in words, numbers or both: "7-Mar-1952", "Mar 3 '52"), a
birth's month and year, a day and month after "on"/"since"/"admitted" ("seen on 3 March"), ages over
89 (also in words, "ninety-three"), phone and fax numbers (national and international layouts),
e-mail and web addresses, public IPv4 and IPv6 addresses, MAC addresses, SSNs, NHS, national
insurance, social-security and health-card numbers of many countries, and
record, health-plan, bank, licence (DEA, NPI, GMC ...), passport, vehicle, device and other numbers
after their keyword (or read "on the card"), Korean resident registration numbers by their shape,
local seven-digit phone numbers ("555-0143", not a range of round figures); a number-like finding is redacted as a whole token ("1234-567-890-AB"). Eponyms
("Ramsay Hunt syndrome", "Kawasaki disease"), year ranges, lists of numbers, blood pressures, doses,
lab values, ages up to 89, drug makers (and the place words inside their names, "Bristol Myers
Squibb"), countries and private IP addresses are not flagged. Every rule runs in linear time
(bench/input_worst_case.py).

A name that is found is completed (arena/pii_names.names_beside: particles and unknown words beside
it, coordinated names, its spelling in another script, every other occurrence of its words and of
their short forms, "Funke" of "Funkeyo", and the given name before another form of it), and so is an
address (the comma-separated parts beside it: "27 … Road, Ikoyi, Lagos", a unit, "Unit 3", and a town
after "in"). Names are also found in signatures ("Thanks,\nRebecca"), a letter's or form's fields
("From: Sarah", "Signed: J. Okoro"), capitals after a title in capitals ("MRS ADWOA KONADU"), list
and handover lines ("2. Osei, Kwabena 74 - sepsis"), after relatives, callers' introductions and
nickname cues ("his son Yaw", "This is Pat", "goes by 'Buzz'"), after an age and a sex ("94M,
Cyril,"); places after a person's "from" or age ("Ivan Petrov, 47, Tver,"), named streets and care
homes ("a flat on Coronation Street"); Eircodes, colonias; a day and month without a year ("taken 3rd
Dec"); incident, coroner's, account, insurance-scheme, visa and invoice numbers after their keyword, a
phone number without spaces after a phone word.

tests/test_pii.py is the set the rules were written against; tests/fixtures/phi_holdout.json was
written before the rules of issue #21, phi_holdout2.json before the phi branch's, phi_holdout3.json
before the phirules2 branch's, phi_holdout4.json before phirules2 was merged and phi_holdout5.json
before phirules3 was merged. All five have since been looked at, and rules were written with their
misses in view (general shapes, no holdout string; the phirules3 branch's with the fourth set's, the
phirules4 branch's with the fifth set's), so none is out of sample any more; their first
measurements are kept in tests/test_pii_holdout.py and the README (`python -m arena.pii_eval
[PATH]`). The next out-of-sample measure is a sixth set written blind to these rules.

    from arena.pii import find_pii, redact
    redact("Mrs Jane Doe, DOB 03/04/1961")   # -> "[NAME], DOB [DATE]"
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from arena.pii_names import (
    COMMON_WORDS,
    EPONYM_NOUNS,
    FUNCTION_WORDS,
    NAME_WORD,
    ORGANISATION_NOUNS,
    NameSpan,
    all_given_names,
    bare_names,
    capitals_names,
    cue_less_names,
    eponym_follows,
    given_or_unknown,
    is_english,
    lower_case_names,
    names_beside,
    not_a_name,
    product_follows,
)
from arena.pii_places import DUTCH_POSTCODE, larger_places, neighbourhood_spans, place_names, place_spans


class PiiKind(StrEnum):
    NAME = "name"
    ADDRESS = "address"
    DATE = "date"
    AGE = "age"
    PHONE = "phone"
    EMAIL = "email"
    URL = "url"
    IP = "ip"
    SSN = "ssn"
    NHS = "nhs"
    NATIONAL_ID = "national_id"
    RECORD = "record"
    OTHER_ID = "other_id"
    PHOTO = "photo"


LABELS: dict[PiiKind, str] = {
    PiiKind.NAME: "a person's name",
    PiiKind.ADDRESS: "a street address, town or postcode",
    PiiKind.DATE: "a full date (birth, admission or visit)",
    PiiKind.AGE: "an age over 89",
    PiiKind.PHONE: "a phone number",
    PiiKind.EMAIL: "an e-mail address",
    PiiKind.URL: "a web address",
    PiiKind.IP: "an IP address",
    PiiKind.SSN: "a social security number",
    PiiKind.NHS: "an NHS number",
    PiiKind.NATIONAL_ID: "a national insurance or health-card number",
    PiiKind.RECORD: "a medical record, insurance or patient number",
    PiiKind.OTHER_ID: "a licence, vehicle, device or other identifying number",
    PiiKind.PHOTO: "a photo's file name",
}
# Safe Harbor allows ages over 89 only as one category, "90 or older".
PLACEHOLDERS: dict[PiiKind, str] = {
    **{kind: f"[{kind.value.upper()}]" for kind in PiiKind},
    PiiKind.AGE: "[AGE 90+]",
    PiiKind.NATIONAL_ID: "[NATIONAL ID]",
    PiiKind.OTHER_ID: "[ID]",
}


@dataclass(frozen=True)
class PiiFinding:
    kind: PiiKind
    start: int
    end: int
    text: str

    @property
    def label(self) -> str:
        """The placeholder this kind of identifier is redacted to, e.g. [NAME]."""
        return LABELS[self.kind]


_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
# month names in capitals as typed in dates, less "May" (a verb too)
_CAPITAL_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?"
    r"|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_FOREIGN_MONTHS = (
    r"(?i:janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|novembre|d[ée]cembre"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|se?tiembre|octubre|noviembre|diciembre"
    r"|janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|novembro|dezembro"
    r"|januari|februari|maart|mei|augustus"
    r"|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre"
    r"|januar|februar|märz|juni|juli|oktober|dezember"
    # Nordic, Turkish, Indonesian and Malay, Polish (genitive, as in dates) months and their short forms
    r"|desember|januari|februari|mars|maj|augusti|ocak|şubat|mart|nisan|mayıs|haziran|temmuz|ağustos|eylül|ekim"
    r"|kasım|aralık|maret|mei|agustus|desember|des|okt|agu|agt|stycznia|lutego|marca|kwietnia|maja|czerwca"
    r"|lipca|sierpnia|września|października|listopada|grudnia)"
)
_NAME_WORD = NAME_WORD
# a day and a month, day first, each in range: "04/12", "9/12" (not "3/52", "150/90")
_DAY_MONTH = r"(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|1[0-2])"
_WEEKDAY = r"(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)"
# what makes a day/month a dose's fraction instead: "1/2 tab", "1/2 of the dose"
_NOT_A_DOSE_FRACTION = r"(?![ \t]+(?i:tabs?|tablets?|caps?|capsules?|dose|of|x|strength|vial|amp)\b)"
_FUNCTION_WORDS_RE = "|".join(sorted(word.capitalize() for word in FUNCTION_WORDS))
_UNIT_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_TEENS = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
# ages over 89 in words: "ninety", "ninety-three", "a hundred", "one hundred and two"
_AGE_WORDS = (
    rf"(?:ninety(?:[- ]{_UNIT_WORDS})?|(?:a|one)[- ]hundred(?:(?:[- ]and)?[- ](?:{_UNIT_WORDS}|{_TEENS}))?)"
)
# who an age belongs to, before "is"/"was" (the age alone is redacted: "He is [AGE 90+]")
_AGE_SUBJECT = (
    r"(?:he|she|who|patient|pt|mum|mom|dad|mother|father|grandmother|grandfather|husband|wife|gran|"
    r"grandma|grandpa)"
)
_NOT_A_UNIT = (
    r"(?!\s*(?:%|percent|per\b|kg|kilos?\b|lbs?\b|pounds|st\b|stone|g\b|mg|mcg|ml|l\b|mmol|mmhg|bpm|beats|"
    r"breaths|min|mins|minutes|sec|secs|seconds|hours?|hrs?|days?|weeks?|wks?|months?|cm|mm|units?|times|"
    r"degrees|°|on\s+(?:room\s+)?(?:air|oxygen|\d)))"
)
_PARTICLES = r"(?:al|el|van|von|de|da|di|du|le|la|der|den|ter|dos|das|bin|ibn|ben|abu)"
# a name after a title, with initials before it ("Mr. K. Osei", "Dr J. R. Hartley")
# (a middle initial is no "O" of "O'Sullivan" nor the "M" of "Müller": "Mr Declan O'Sullivan")
# (a name stays on its line: "To: Dr A. Kumar\nFrom: ..." is no "Kumar From")
_FULL_NAME = rf"(?:[A-Z]\.\s*){{0,3}}{_NAME_WORD}(?:[ \t]+[A-Z]\.?(?![^\W\d_]|['’]))?(?:[ \t]+(?:{_PARTICLES}[ \t]+)*{_NAME_WORD}){{0,2}}"
_STREET_TYPES = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Court|Ct|Boulevard|Blvd|Way|Place|Pl|"
    r"Crescent|Terrace|Gardens|Square|Sq|Highway|Hwy|Parkway|Row|Mews|Grove|View|Heights|Rise|Circle|Trail|"
    r"Parade|Esplanade|Promenade|Quay|Wharf|Vale|Estate|Pkwy|Cres|Tce|Terr|Gdns|Cir)\b\.?"
)
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_PREFIX_STREET = (
    r"(?:Rue|Av\.|Avenue|Boulevard|Chemin|Allée|Impasse|Quai|Calle|Avenida|Avda\.?|Paseo|Plaza|Carrer|Passeig|"
    r"Via|Viale|Piazza|Corso|Largo|Vicolo|Rua|Travessa|Praça|Estrada|C/|"
    # Polish, Indonesian and Malay ones ("ul. Marszałkowska 10", "Jl. Sudirman No. 5", "Jalan Ampang")
    r"[Uu]l\.|ulica|Jl\.|Jln\.?|Jalan)"
)
# the same types typed in lower case after a house number ("55 rue Saint-Denis"); not "via", "largo"
_PREFIX_STREET_LOWER = (
    r"(?:rue|avenue|boulevard|chemin|allée|calle|avenida|paseo|carrer|rua|travessa|praça|estrada)"
)
# the street's name after its type: particles ("des", "de la", "dell'") and one to three words
_STREET_NAME = (
    r"(?:(?:de|des|du|la|le|les|del|della|delle|dei|degli|di|da|do|dos|das|d['’]|l['’]|dell['’])\s*)*"
    rf"{NAME_WORD}(?:\s+{NAME_WORD}){{0,2}}"
)
_SUFFIX_STREET = (
    r"straße|strasse|str|weg|gasse|platz|allee|ring|damm|ufer|gracht|laan|straat|plein|kade|steeg|singel|"
    r"gatan|vägen|gade|vej|veien|gata"
)
# where someone lives, as a fixed-width look-behind so the words stay in the redacted text
_LIVES_AT = (
    "(?:"
    + "|".join(
        f"(?<=(?i:{cue}) )"
        for cue in ("lives at", "living at", "resides at", "resident of", "home at", "address:", "address")
    )
    + ")"
)
# English titles and those of other languages ("Sra.", "Mme", "Herr")
_TITLES = r"(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Sra|Sr|Dra|Dña|Mme|Mlle|Herr|Frau|Sig|Signor|Signora|Senhor|Senhora|Dhr|Mevr)"
_TITLE_WORDS = frozenset(
    {
        "mrs",
        "mr",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "sra",
        "sr",
        "dra",
        "dña",
        "mme",
        "mlle",
        "herr",
        "frau",
        "sig",
        "signor",
        "signora",
        "senhor",
        "senhora",
        "dhr",
        "mevr",
    }
)
# People a clinician names beside a patient, and the words that introduce a name.
_NAME_CUES = (
    r"(?:[Pp]atient|[Pp]t|[Cc]lient|[Dd]aughter|[Ss]on|[Ww]ife|[Hh]usband|[Mm]other|[Ff]ather|[Ss]ister|"
    r"[Bb]rother|[Pp]artner|[Cc]arer|[Gg]uardian|[Cc]ontact|[Nn]amed?|[Cc]alled|"
    # everyday words for relatives, in lower case only ("my mum, Rose Hall"; not a headline's "Mum Says")
    r"mum|mom|dad|gran|grandma|grandpa|grandmother|grandfather|aunt|uncle|niece|nephew)"
)
# An identifier after its keyword: letters and digits (at least one digit) with dashes or slashes, or
# groups of digits ("2953 41685 1", "1 84 12 76 451 089 46"), or a UK number plate. Case-sensitive, so
# "is 7 days" is no id.
_ID_TOKEN = (
    # a GS1 element string of a device's UDI, "(01)00844588003288(21)A7X9921"
    r"(?:(?:\(\d{2,4}\)[A-Z\d]{1,30}){2,}"
    # a prefix of letters (and digits) and one long group of digits: "RN 0473821", "FP10 0345678"
    # (the prefix no keyword itself: "prescriber NPI 1497758544" is the NPI's number)
    r"|(?!KEYWORD)[A-Z]{1,4}\d{0,4}[ ](?:\d{5,12}|\d{2,5}(?:[-/]\d{2,6}){1,3})(?![\w/-])"
    # letters joined to digits by a hash ("VP#55120934")
    r"|[A-Z]{1,4}#\d{4,12}(?![\w/-])"
    # a number plate of three letters, three digits and a letter: "KBZ 417Q"
    r"|[A-Z]{3}[ ]\d{3}[A-Z]\b"
    # a German number plate, "B-MK 4521", "M-AB 123E"; an Indian one, "KA 01 AB 1234"
    r"|[A-ZÄÖÜ]{1,3}-[A-Z]{1,2}\s\d{1,4}[EH]?\b"
    r"|[A-Z]{2}[ -]?\d{1,2}[ -]?[A-Z]{1,3}[ -]?\d{1,4}\b"
    r"|[A-Z]{2}\d{2}\s?[A-Z]{3}\b"
    r"|\d{1,5}(?:[ -]\d{1,5}){1,6}(?:[ -][A-Z]{1,2})?(?![\w/-])"  # never ends inside a longer token
    r"|[A-Z]{1,4}(?:[ ]\d{2,5}){2,5}(?![\w/-])"  # letters, then groups of digits: "ZGP 882 194 55"
    # letters and digits joined by dashes, slashes or dots ("UK.FCL.PPL.012345")
    r"|(?=[A-Z\d/.-]*\d)[A-Z\d]++(?:[-/.][A-Z\d]++)*+"
    # last, so the longer shapes above win: a short plate, "LV 4471"
    r"|[A-Z]{2,3}[ ]\d{3,4}(?![\w/-]))"
)
# what may stand between a keyword and its identifier: "no.", "number", "#", "ID", "ref", "Nr.", "n°"
_ID_LABEL = (
    r"(?:[\s-]*(?i:no\.?|nos?\b|number|num|nr\.?|n[°º]|#|id|identifier|pin|card|karte|plate|tag|is|ref\.?|reference|code|:"
    r"|hash|match|as|\([A-Z]{2,5}\)"
    r"|n[úu]mero(?:\s+de)?|report"
    # where the number is read: "on the script is", "from her wristband"
    r"|(?:on|from)\s+(?:the|his|her|their|my)\s+(?:card|script|prescription|form|label|wristband|band|letter|referral)))*"
    r"\s*[:#]?\s*"
)
# Keywords are families, across countries: the record, insurance, bank and case numbers a clinic or an
# insurer keeps; national, social-security and health-card numbers; professional licences and
# registrations (DEA, NPI, GMC ...); device serials. Acronyms that are also words or other things ("DEA",
# "SN") must be in capitals; a generic noun ("group", "file") counts only before a label ("group number").
_NEEDS_LABEL = r"(?=\s*(?:no\b|no\.|nos?\b|number|num\b|nr\b|#|id\b|ID\b|ref\b|reference|:))"
_RECORD_KEYWORDS = (
    r"MRN|hospital|hosp|record|patient|insurance|insured|insurer|policy|member|medicare|medicaid|case|chart|"
    r"account|unit|encounter|accession|claim|billing|subscriber|beneficiary|health plan|plan|episode|"
    r"specimen|admission|referral|sort code|routing|(?:credit|debit|bank) card|acct|bank acc|a/c|"
    # incident, coroner's and attendance references: "Datix no. W-2231", "coroner's ref 24-CR-88"
    r"incident|datix|coroner(?:['’]s)?|attendance|safeguarding|complaint|"
    r"Fallnummer|Patientennummer|Aktenzeichen|dossier|historia cl[ií]nica|cartella clinica|"
    r"prontu[áa]rio|expediente|Krankenakte|"
    rf"(?:group|file|order|booking|visit|sample|laboratory|lab|reference|ref|acc|IP|OP|inpatient|outpatient|pt){_NEEDS_LABEL}|"
    # Chinese inpatient, record and outpatient numbers; an Arabic file or patient number
    r"住院号|病历号|病案号|门诊号|رقم الملف|رقم المريض|"
    # an insurance plan's group number without its label: "group 0705123" (not "group 2", "group 65-74")
    r"group(?=\s+\d{6,}\b)"
)
# PID: a patient identifier; UHID: an Indian hospital's unique health id
_RECORD_ACRONYMS = (
    r"UR|URN|MBI|HICN|IBAN|NHI|HIC|EMR|EHR|EPR|CRN|NHC|PID|UHID|ACC|ACCT|HAR|"
    # national health-insurance schemes' member numbers (Kenya, Nigeria, Ghana, Indonesia, India)
    r"NHIF|SHIF|NHIS|NHIA|BPJS|JKN|PMJAY|CGHS|ESIC|"
    # a Thai hospital number ("HN 64-018832")
    r"HN"
)
_NATIONAL_KEYWORDS = (
    r"national insurance|NI|NINO|health[- ]card|CHI|IHI|individual healthcare identifier|SIN|"
    r"social insurance|Aadhaar|personal (?:identity|health) number|PPSN?|BSN|provincial health|"
    r"social security|s[ée]curit[ée] sociale|carte vitale|(?:Kranken)?[Vv]ersicherte(?:n)?nummer|"
    r"Versicherungsnummer|Sozialversicherungsnummer|SV-Nummer|Steuer-?ID|Personalausweis(?:nummer)?|"
    r"burgerservicenummer|codice fiscale|tessera sanitaria|tarjeta sanitaria|personnummer|"
    r"henkil[öo]tunnus|health (?:insurance )?number|national id(?:entity)?(?: number)?|identity card|"
    r"ID card|citizen|Emirates ID|MyKad|身份证(?:号码?)?|"
    # identity cards of more countries: Latin America's cédula, the Gulf's iqama, Botswana's Omang,
    # Ghana's and Kenya's cards, Turkey's kimlik, the Philippines' PhilHealth
    r"c[ée]dula(?: de identidad)?|carn[eé]t?(?: de identidad)?|iqama|omang|ghana card|huduma|kimlik|philhealth|"
    # Portugal's health-service user number ("número de utente")
    r"utente|teudat zehut|"
    # the Nordic countries' personal numbers, Iceland's kennitala, Japan's My Number, a German insurer's card
    r"f[øo]dselsnummer|f[öo]delsenummer|kennitala|henkilötunnus|my number|(?:Gesundheits|Versicherten)karte|"
    # a Chinese medical-insurance card number
    r"医保卡号?|社保卡号?"
)
_NATIONAL_ACRONYMS = (
    r"NIR|INSEE|DNI|NIE|NIF|NUSS|CIP|CPF|CURP|PESEL|AHV|OHIP|RAMQ|PHN|PHIN|HCN|ULI|MSP|HKID|NRIC|TFN|CPR|"
    r"SVNR|NIN|"
    # Korea's resident registration, Vietnam's citizen identity and identity card numbers; Indonesia's, Pakistan's, Zambia's, Chile's, Argentina's,
    # Sri Lanka's, the Philippines', Singapore's, India's, Romania's, Bulgaria's, Croatia's, Serbia's,
    # Greece's, Turkey's, Mexico's and Nigeria's
    r"RRN|CCCD|CMND|NIK|KTP|CNIC|NICOP|NRC|RUT|CUIL|CUIT|NIC|SSS|UMID|PSN|FIN|PAN|ABHA|CNP|EGN|OIB|JMBG|"
    r"AMKA|TCKN|NSS|BVN|CIN|KVNR|AOK|NID|CC|IC|ת\.ז\.?"
)
_OTHER_ID_KEYWORDS = (
    r"driver['’]?s licen[cs]e|driving licen[cs]e|licen[cs]e|passport|registration|reg|plate|VIN|serial|S/N|"
    r"IMEI|device|certificate|prescription|employee|badge|student|prescriber|provider|practitioner|"
    r"transmitter|sensor|receiver|pacemaker|defibrillator|implant|pump|"
    # number plates in other languages; prisoners', soldiers' and trial subjects' numbers
    r"Kennzeichen|immatriculation|matr[ií]cula|targa|prisoner|inmate|offender|subject|participant|"
    rf"rx{_NEEDS_LABEL}|"
    # travel, residence and commerce papers; a letter's reference ("our ref JT/AB/4471")
    rf"visa|(?:residence|work) permit|permit{_NEEDS_LABEL}|invoice|receipt|tracking|waybill|"
    r"(?:our|your|my|their)\s+ref(?:erence)?|"
    rf"(?:job|ticket|incident log){_NEEDS_LABEL}|"
    rf"(?:service|asset)\s+tag|(?:service|enrol?lment|randomi[sz]ation|screening){_NEEDS_LABEL}|"
    # biometric templates and enrolments: "fingerprint template FP-7731-AX09", "voiceprint enrolment VP-5510"
    r"barcode|wristband|tail\s+(?:number|no\.?)|"
    # an employer's, a police report's, a diploma's or a medical aid's reference; a recognition code
    rf"employer(?:\s+ref(?:erence)?)?|police\s+report|crime\s+ref(?:erence)?|diploma(?:\s+tescil)?|tescil|"
    rf"medical\s+aid(?:\s+[A-Z][a-z]+)?|(?:iris|face|facial|voice)\s+recognition(?:\s+code)?|"
    r"(?:finger|voice|palm)[ -]?prints?(?:\s+(?:template|enrol?l?ment|scan|record|hash))?|"
    r"(?:retina[l]?|iris|face|facial|biometric)\s+(?:template|enrol?l?ment|scan|record|hash|id)"
)
_OTHER_ID_ACRONYMS = r"DEA|NPI|GMC|NMC|HCPC|GPhC|AHPRA|UPIN|LANR|RPPS|ADELI|BIG|SN|UDI|CDL"


_LOCAL_PHONE = re.compile(r"(?<![\w.+/-])[2-9]\d{2}-\d{4}(?![\w/-]|[.,]\d)" + _NOT_A_UNIT)
# a local number with a space or a dot after a word for a phone: "her ph is 555 0117", "call 555.0143"
_CUED_LOCAL_PHONE = re.compile(
    r"\b(?i:phone|mobile|mob|tel|telephone|cell|ph|call|ring|text|fax)\b[^\d\n]{0,10}?"
    r"(?P<value>(?<![\w.+/-])[2-9]\d{2,3}[ .]\d{4})(?![\w/-]|[.,]\d)" + _NOT_A_UNIT
)


# (a licence's own acronym before its number is kept: "NPI [ID]"; a record's prefix is redacted with it,
# "account [HAR 4455120987]", "serial [SN 41-7765-0092]")
_LICENCE_ACRONYMS = r"(?:DEA|NPI|GMC|NMC|HCPC|GPhC|AHPRA|UPIN|LANR|RPPS|ADELI|BIG|UDI|CDL|NHS|SSN|MRN|ID)\b"


def _keyword_id(keywords: str, acronyms: str) -> re.Pattern[str]:
    token = _ID_TOKEN.replace("(?!KEYWORD)", f"(?!{_LICENCE_ACRONYMS})")
    return re.compile(rf"\b(?:(?i:{keywords})|(?:{acronyms}))\b{_ID_LABEL}(?P<id>{token})")


# Order matters only for overlapping matches: the first kind listed wins the span.
_RULES: tuple[tuple[PiiKind, re.Pattern[str]], ...] = (
    # starts only where a run of local-part characters starts, and never gives characters back (++):
    # linear time on long runs of word characters (the unanchored form was quadratic)
    (PiiKind.EMAIL, re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]+\.[\w.-]*\w")),
    # an e-mail address written to dodge spam filters: "b.okafor[at]gmail.com", "jo (at) mail (dot) com"
    (
        PiiKind.EMAIL,
        re.compile(
            r"(?<![\w.+-])[\w.+-]++\s*(?:\[at\]|\(at\)|\{at\})\s*[\w-]+(?:\s*(?:\.|\[dot\]|\(dot\))\s*[\w-]+)+",
            re.I,
        ),
    ),
    # a social-media handle after the network's name: "Instagram @jenny_runs", "TikTok: @someone"
    (
        PiiKind.URL,
        re.compile(
            r"\b(?i:instagram|twitter|tiktok|facebook|snapchat|telegram|threads|youtube|handle)\b[^@\n]{0,20}?"
            # (not inside a web address, "tiktok.com/@someone", nor an organisation's in capitals, "@WHO")
            r"(?P<value>(?<![\w@/])@(?![A-Z]+\b)[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)"
        ),
    ),
    (PiiKind.URL, re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")),
    # a web address without its scheme, by its top-level domain: "kirstysjourney.example.com",
    # "instagram.com/some.one"; not a public body's ("nice.org.uk" is an .org: flagged; "cdc.gov" is not)
    (
        PiiKind.URL,
        re.compile(
            # a host under a site ("someone.wordpress.com") or a page on one ("tiktok.com/@someone"); a
            # site's own name alone ("MayoClinic.com", "Cancer.Net") is a public resource
            r"(?<![\w@.-])(?:[a-z\d][a-z\d-]*\.)(?:(?:[a-z\d][a-z\d-]*\.)+(?=(?:com|net|org|io|me|info|co|app|blog|site|online|page|xyz)(?:\.[a-z]{2})?(?![\w@-]))"
            r"|(?=(?:com|net|org|io|me|info|co|app|blog|site|online|page|xyz)(?:\.[a-z]{2})?/[^\s<>\"']*[^\s<>\"'.,;:!?)\]]))"
            r"(?:com|net|org|io|me|info|co|app|blog|site|online|page|xyz)"
            r"(?:\.[a-z]{2})?(?![\w@-])(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)\]])?",
            re.I,
        ),
    ),
    (PiiKind.SSN, re.compile(r"\b(?:SSN|social security(?: number)?)?\s*:?\s*\b\d{3}-\d{2}-\d{4}\b", re.I)),
    (
        PiiKind.SSN,
        re.compile(
            r"\b(?i:SSN|social security)(?i:\s*(?:no\.?|number|#|is|as|:))*\s*\d{3}[ -]?\d{2}[ -]?\d{4}\b"
        ),
    ),
    (
        PiiKind.NHS,
        re.compile(r"\bNHS\s*(?:no\.?|number|#)?\s*:?\s*\d{3}[\s-]?\d{3}[\s-]?\d{4}\b", re.I),
    ),
    # a Nordic personal number by its shape: a birth date (DDMMYY, or YYMMDD), a dash, a plus or a letter
    # for the century, three digits and a check ("010203-1234", "131052-308T"); the date is checked
    (PiiKind.NATIONAL_ID, re.compile(r"(?<![\w-])(?P<birth>\d{6})[-+A]\d{3}[\dA-Z](?![\w-])")),
    (PiiKind.NATIONAL_ID, _keyword_id(_NATIONAL_KEYWORDS, _NATIONAL_ACRONYMS)),
    # UK national insurance number by its shape (two letters, six digits, A-D), with or without spaces:
    # any two letters, since the administrative and example prefixes ("QQ") identify a record too
    (PiiKind.NATIONAL_ID, re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")),
    (PiiKind.RECORD, _keyword_id(_RECORD_KEYWORDS, _RECORD_ACRONYMS)),
    (PiiKind.OTHER_ID, _keyword_id(_OTHER_ID_KEYWORDS, _OTHER_ID_ACRONYMS)),
    # a bare "ID" before a number, where no record or licence keyword owns it ("SA ID 8001015009087";
    # "Patient ID 4471" is a record's)
    (PiiKind.NATIONAL_ID, _keyword_id("(?!)", "ID")),
    (
        PiiKind.DATE,
        re.compile(
            # "3 March 2024", "3rd of March, 1950", "7 Mar '52"; "March 3, 2024", "Mar 3 '52"
            r"\b(?:\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r",?\s+(?:\d{4}|['’]\d{2})"
            r"|" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:\d{4}|['’]\d{2})"
            # "7-Mar-1952", "07/MAR/52", "07MAR1952", "1952-Mar-07", "2024 Mar 3"
            r"|\d{1,2}-" + _MONTHS + r"-(?:\d{4}|\d{2})|\d{1,2}/" + _MONTHS + r"/(?:\d{4}|\d{2})"
            r"|\d{1,2}" + _MONTHS + r"(?:\d{4}|\d{2})"
            r"|\d{4}[-/ ]" + _MONTHS + r"[-/ ]\d{1,2}(?:st|nd|rd|th)?"
            # numeric dates, but not a piece of an IP or version number ("81.2.69" in 81.2.69.160)
            r"|(?<![\d.])\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})(?![.]\d)"
            r"|(?<![\d.-])\d{1,2}-\d{1,2}-\d{4}(?![-.]?\d)"  # "03-03-1952", never inside a range
            r"|(?<![\d.])\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?![.]\d))\b",
            re.I,
        ),
    ),
    # a full date with the month in French, Spanish, Portuguese, Italian or German ("12 mai 1948", "8 de
    # octubre de 1955", "3. März 1950"); a date written in Chinese or Japanese ("1990年5月12日")
    (
        PiiKind.DATE,
        re.compile(
            rf"\b\d{{1,2}}(?:\.|er|º|°)?\s+(?:de\s+)?{_FOREIGN_MONTHS}\.?\s+(?:de\s+|del\s+)?\d{{4}}\b"
            r"|(?<!\d)\d{4}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"
            # a Japanese era's date ("令和8年11月30日"), a Vietnamese one ("15 tháng 8 năm 1970"), a Hungarian
            # one ("1961. március 5.")
            r"|(?:令和|平成|昭和)\s?\d{1,2}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"
            r"|\b\d{1,2}\s+tháng\s+\d{1,2}(?:\s+năm\s+\d{4})?"
            r"|\b\d{4}\.\s*(?:január|február|március|április|május|június|július|augusztus|szeptember|október"
            r"|november|december)\s+\d{1,2}\."
        ),
    ),
    # a US month/day or a day/month without a year after a word that dates an event, where the day is over
    # 12 so it is no fraction ("admitted 11/28", "seen on 28/11"; not "on 1/2 tablet")
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:on|since|admitted|discharged|seen|born|died|dob:?|operated|reviewed|placed|inserted|removed"
            r"|started|stopped|attended|delivered|fell|injured|booked|scheduled|due|dated|taken|dose|lmp|edd|tci)\s+(?P<value>"
            r"(?:1[0-2]|0?[1-9])/(?:1[3-9]|2\d|3[01])|(?:1[3-9]|2\d|3[01])/(?:1[0-2]|0?[1-9]))(?![/\d.,]\d|\d)"
            + _NOT_A_UNIT
        ),
    ),
    # any day/month (or month/day) after a word that only dates an event: "admitted 02/12", "born on 4/7"
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:admitted|discharged|born|died|operated|delivered)\s+(?i:on\s+)?(?P<value>"
            r"(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|1[0-2]|[12]\d|3[01]))(?![/\d.,]\d|\d)(?!\s+of\b)"
            + _NOT_A_UNIT
        ),
    ),
    # a day and month without a year after a word that dates an event ("seen on 3 March", "admitted on
    # the 5th of May", "from May 2 to May 9"): Safe Harbor counts every element of a date but the year
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:on|since|from|until|till|to|by|before|after|admitted|discharged|born|seen|died|dob:?"
            # a weekday before the day ("on Tuesday 2nd December")
            r"|date of birth:?|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?"
            # an appointment's date ("follow up 21 Feb", "review 3 June", "booked for 9 May")
            # (past "is", "was", "on", "for": "her appointment is 9 May")
            r"|follow[- ]?up|review|appointment|booked|scheduled|due|dated)\s+(?i:(?:is|was|on|for)\s+)?(?i:the\s+)?(?P<value>\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?"
            + _MONTHS
            + r"|"
            + _MONTHS
            + r"\s+\d{1,2}(?:st|nd|rd|th)?)\b(?![,.]?\s*\d)"
            + _NOT_A_UNIT
        ),
    ),
    # a day and a month in another language or in lower case without a year, after a word that dates an
    # event ("hospitalisée le 28 novembre", "desde el 3 de diciembre", "fell on 5 december", "since june 3")
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:on|since|from|until|to|by|before|after|admitted|discharged|born|seen|died|le|el|am|den|desde"
            r"|depuis|seit|vom|il|dal|em|desde|d/c)\s+(?P<value>\d{1,2}(?:\.|er|º)?\s+(?:de\s+)?"
            # ("may" in lower case is a verb: "since 2 may help")
            + rf"(?:{_FOREIGN_MONTHS}|(?!may\b)(?i:{_MONTHS}))"
            + rf"|(?!may\b)(?i:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?)\b(?![,.]?\s*\d)"
            + _NOT_A_UNIT
        ),
    ),
    # a day and month after a weekday ("d/c Wed 9/12"), after "vom", "am", "seit" in German ("vom 23.11.
    # bis"), or opening a line of notes ("- 04/12 CXR: RUL opacity"); the month at most 12
    (
        PiiKind.DATE,
        re.compile(
            rf"\b{_WEEKDAY}\.?\s+(?P<value>{_DAY_MONTH})(?![/\d])"
            # a weekday and an ordinal day ("INR check on Mon 7th"); a day and month after a time ("at 23:40
            # on 05/12", "04:10 on 06/12")
            rf"|\b{_WEEKDAY}(?:day|sday|nesday|rsday|urday)?\.?\s+(?P<value4>(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th))\b"
            rf"|\b\d{{1,2}}[:.]\d{{2}}\s+on\s+(?P<value5>{_DAY_MONTH})(?![/\d]){_NOT_A_DOSE_FRACTION}"
            r"|\b(?i:vom|seit|bis)\s+(?P<value2>(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.)(?!\d)"
            # (not a dose's fraction: "- 1/2 tab bd")
            rf"|(?m:^)[ \t]*[-•*][ \t]*(?P<value3>{_DAY_MONTH})(?![/\d.])(?=[ \t]+[A-Za-z]){_NOT_A_DOSE_FRACTION}"
            + _NOT_A_UNIT
        ),
    ),
    # a day and month after a visit's verb and a few words ("seen in clinic 23/11", "last saw her 20/11")
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:seen|saw|reviewed|visited|admitted|discharged|died)(?:\s+[a-z]+){1,2}\s+(?:on\s+)?"
            rf"(?P<value>{_DAY_MONTH})(?![/\d]|[.,]\d){_NOT_A_DOSE_FRACTION}" + _NOT_A_UNIT
        ),
    ),
    # a day before a month by its name without any cue ("Bloods taken 3rd Dec", "EDD 14 July", "(1 Dec)"):
    # Safe Harbor keeps only the year; not "May" (a verb as often: "2 May help"), not after a phase, a
    # type or a grade ("Phase 3 Sept"), not the month first ("Mar 3 is when the trial reported")
    (
        PiiKind.DATE,
        re.compile(
            r"(?<![\d.,/-])\b(?P<uncued>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
            + _CAPITAL_MONTHS
            + r"\b(?![,.]?\s*\d|\s*(?:%|mg|ml|kg|g\b))"
        ),
    ),
    # month and year of a birth or death ("born in March 1961"): Safe Harbor keeps only the year
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?i:born|DOB|d\.o\.b\.?|date of birth|died|deceased)\s*(?:in|on)?\s*:?\s*"
            + _MONTHS
            + r",?\s+\d{4}\b",
            re.I,
        ),
    ),
    (
        PiiKind.AGE,
        re.compile(
            r"\b(?:9\d|1[01]\d)[- ](?:years?|yrs?)[- ]old\b"
            r"|\b(?:aged?|age:)\s*(?:9\d|1[01]\d)\b(?![./-]\d)"
            # after a form's label and a dash or an equals sign: "Age — 99", "age=94"
            r"|\bage\s*[—–=-]\s*(?:9\d|1[01]\d)\b(?![./-]\d)"
            + _NOT_A_UNIT
            # (and in other languages: Polish "lata", Czech "let", Nordic "år", Finnish "vuotta", Hungarian
            # "éves", Vietnamese "tuổi", Japanese "歳", Chinese "岁")
            + r"|\b(?:9\d|1[01]\d)\s*(?:yo|y/o|y|yrs?|years|años|anos|ans|Jahre|jährige?r?|anni|jaar|lata|let|år"
            # (not an anniversary: "100 years of insulin", "100 år av insulin"; "95 years of age" is an age)
            r"|vuotta|éves|tuổi|yaşında|yaş)\b(?![-/]|\s+ago|\s+(?:of(?!\s+age)|av|af|von|since)\b)|(?<!\d)(?:9\d|1[01]\d)\s?[歳岁]"
            # an age and a sex, "94M", "101 F", where a line or a clause opens (not "99F" after "temp")
            r"|(?:^|(?<=[\n(,;:]\s)|(?<=[\n(,;:]))(?P<sexed>(?:9\d|1[01]\d)\s?(?-i:[MF]))(?=[\s,;:.)]|$)"
            # a birthday over 89 ("her 93rd birthday"); a sex, then an age, opening a clause ("F, 94")
            r"|\b(?:9\d|1[01]\d)(?:st|nd|rd|th)(?=\s+birthday\b)"
            r"|(?:^|(?<=[\n(,;:.]\s)|(?<=[\n(,;:]))(?-i:[MF])\s?[,/]\s?(?P<value2>9\d|1[01]\d)(?=[\s,;:.)]|$)"
            rf"(?![ \t]*(?:y|yo|y/o|yrs?|years?)\b){_NOT_A_UNIT}"
            # a decade over 89: "in her nineties", "in his late nineties", "a 90-something man"
            r"|\bin\s+(?:his|her)\s+(?:(?:early|mid|late)[- ])?nineties\b|\b9\d-something\b"
            # spelled out: "ninety-three years old", "a ninety three year old", "aged one hundred and two"
            rf"|\b{_AGE_WORDS}[- ](?:years?|yrs?)[- ](?:old|of age)\b"
            rf"|\b(?:aged?|age:|age of)\s+{_AGE_WORDS}\b"
            # after a person and a verb: "He is ninety-three and", "she's 94 now"; not a weight, a
            # saturation or a time ("he is 92 kg", "she is 94% on air", "he was 90 minutes late")
            # a spelled age over 89 set off by a comma or a dash: "Mr Petrov, ninety-three, lives alone",
            # "Hussein Jaafar — ninety-nine per his son" (not "ninety per cent")
            rf"|(?<=[,—–])\s*(?P<value4>{_AGE_WORDS})(?=\s*[,;.)]|\s+per\b(?!\s*cent))"
            # an age about to be reached: "turning 92 on 24/12" (not "turning 90 degrees")
            r"|\bturning\s+(?P<value3>9\d|1[01]\d)\b(?![.,/:]?\d)"
            + _NOT_A_UNIT
            + rf"|(?:\b{_AGE_SUBJECT}|(?-i:\b{_TITLES}\.?\s+{_NAME_WORD}))(?:\s+(?:is|was|turned|turns|will be)|['’]s)\s+(?:now\s+)?"
            rf"(?P<value>{_AGE_WORDS}|9\d|1[01]\d)\b(?![.,/:]?\d){_NOT_A_UNIT}",
            re.I,
        ),
    ),
    (PiiKind.IP, re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")),
    # IPv6, full or with "::" ("2001:db8:85a3::8a2e:370:7334"): hex groups of at most four, checked by
    # the ipaddress module (so "12:30:45", a time, is none); a colon after it is punctuation
    (
        PiiKind.IP,
        re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?<![^:]:)(?![\w]|:[\w:])"),
    ),
    # a device's MAC address, "00:1A:2B:3C:4D:5E" or "00-1A-2B-3C-4D-5E"
    (
        PiiKind.OTHER_ID,
        re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])"),
    ),
    # an IBAN by its shape: a country, two check digits and groups of four ("DE89 3704 0044 0532 0130 00")
    (PiiKind.RECORD, re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z\d]{4}){3,7}(?:[ ]?[A-Z\d]{1,3})?\b")),
    # a Chinese resident identity number by its shape: region, birth date, sequence, check (digit or X)
    (
        PiiKind.NATIONAL_ID,
        re.compile(
            r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX](?![\dA-Za-z])"
        ),
    ),
    # a Korean resident registration number by its shape: birth date, a dash, sex digit and six more
    (
        PiiKind.NATIONAL_ID,
        re.compile(r"(?<![\d-])\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])-[1-8]\d{6}(?![\d-])"),
    ),
    # a biometric template's or hash's hex groups after their keyword: "retinal hash 9f3a-77c1-e2b0"
    (
        PiiKind.OTHER_ID,
        re.compile(
            r"\b(?i:hash|template|biometric|voice ?print|finger ?print|iris|retina[l]?)\b[^\n]{0,20}?"
            # (hex groups with dashes, or one long hex string: "template hash a9f3e17c04b2")
            r"(?P<value>(?<![\w-])(?=[\da-f-]*[a-f])(?=[\da-f-]*\d)(?:[\da-f]{4,}(?:-[\da-f]{4,}){1,7}|[\da-f]{10,}))(?![\w-])"
        ),
    ),
    # a photo's or a photo series' reference after its keyword: "photo ref CAM-0412-LH", "series MP-2026-0981"
    (
        PiiKind.PHOTO,
        re.compile(
            r"\b(?i:photo(?:graph)?s?|image|picture|series|wound\s+app)\b[^\n\d]{0,12}?(?i:ref(?:erence)?|id|no\.?|series|#)?"
            r"[ \t:#]*(?P<value>(?<![\w-])(?=[A-Z\d-]*\d)(?=[A-Z\d-]*[A-Z])[A-Z\d]{2,}(?:-[A-Z\d]{2,}){1,4})(?![\w-])"
        ),
    ),
    # a photo's file name: a patient's photo is an identifier whatever it shows ("IMG_20261130_0915.jpg")
    (
        PiiKind.PHOTO,
        # (a consultation's video or voice recording too: "consult_recording_MWhite_2026-12-01.mp4")
        re.compile(
            r"(?<![\w./-])[\w.-]*\w\.(?i:jpe?g|png|heic|heif|tiff?|bmp|gif|webp|dng|mp4|mov|avi|m4a|wav)(?![\w.])"
        ),
    ),
    # a post-office box, with the post code a dash joins to it ("P.O. Box 4471-00100"): before the
    # phone rule, which would take its digits
    (PiiKind.ADDRESS, re.compile(r"\b(?i:p\.?\s?o\.?\s?box)\s*#?\s*\d{1,6}(?:-\d{3,5})?\b")),
    (
        PiiKind.PHONE,
        re.compile(
            # an international prefix (+61, 0049), an area code in brackets, then up to seven groups:
            # "+61 2 9876 5432", "0049 30 12345678", "06 12 34 56 78", "+1 (617) 555-0142"
            r"(?<![\w.])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{1,5}(?:[\s.-]\d{1,8}){1,6}(?!\w|\.\d)"
            r"|(?<![\w+])\+\d{10,14}\b"
        ),
    ),
    # a number of ten to thirteen digits without spaces after a word for a phone ("his number is
    # 07700900461", "WhatsApp +2348035550199"), and a UK mobile number by its shape ("07700900461")
    (
        PiiKind.PHONE,
        re.compile(
            r"(?:\b(?i:phone|mobile|mob|tel|telephone|cell|whatsapp|sms|fax|ph)\b"
            r"|(?:\b(?i:his|her|their|my|your|our)|['’]s)\s+(?i:number|no\.?))[^\d\n]{0,14}?"
            r"(?P<value>(?<![\w+])\+?\d{10,13})\b(?![.,]\d)"
            r"|(?<![\w+])07\d{9}\b(?![.,]\d)"
        ),
    ),
    # a local seven-digit number, three digits (the first 2-9), a dash and four: "555-0143"; not a
    # range of doses or counts ("250-1000 mg", "150-4000/µL", "range 200-1500": see _keep)
    (PiiKind.PHONE, _LOCAL_PHONE),
    (PiiKind.PHONE, _CUED_LOCAL_PHONE),
    # addresses, one pattern per shape: each then starts with its own character class, which the regex
    # engine uses to skip ahead (one alternation of them all was tried at every position)
    (
        PiiKind.ADDRESS,
        # "12 Baker Street", "No. 5 Ogui Road", "4/22 Smith Street" (unit 4, house 22), "220 West 98th St"
        re.compile(
            rf"(?:\b(?:No|Nr)\.?\s*)?\b(?:\d{{1,5}}[A-Za-z]?/)?\d{{1,5}}[A-Za-z]?\s+"
            rf"(?:(?:{_NAME_WORD}(?:['’]s)?\s+){{1,3}}"
            rf"|(?:(?:North|South|East|West|N|S|E|W)\.?\s+)?\d{{1,3}}(?:st|nd|rd|th)\s+){_STREET_TYPES}"
        ),
    ),
    # a street type before its name, French, Spanish, Italian, Portuguese style, with its number before
    # ("3 Rue des Lilas") or after ("Calle Mayor 5", "Via Roma 10")
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b\d{{1,5}}[a-z]?,?\s+(?:{_PREFIX_STREET}|{_PREFIX_STREET_LOWER})\s+{_STREET_NAME}"
            rf"|(?<![\w.])(?:{_PREFIX_STREET}|{_PREFIX_STREET_LOWER})\s+{_STREET_NAME},?\s+(?:No\.?\s*)?\d{{1,5}}[a-zA-Z]?(?:/[\dA-Za-z]{{1,4}})?\b"
        ),
    ),
    # German, Dutch and Nordic street names end in their type: "Hauptstraße 12", "Prinsengracht 263"
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b(?:{_NAME_WORD}\s+)?[{_UP}][{_LOW}]*?(?:{_SUFFIX_STREET})\.?\s+\d{{1,4}}[a-z]?\b"
            rf"|\b{_NAME_WORD}\s+(?:Straße|Strasse|Weg|Gasse|Platz|Allee)\s+\d{{1,4}}[a-z]?\b"
        ),
    ),
    # a street without a house number after the words that say someone lives there ("lives on Elm St.")
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b(?i:lives|living|resides|residing|moved)\s+(?i:on|off|at|in|to)\s+"
            rf"(?P<value>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}\s+(?i:{_STREET_TYPES}))"
        ),
    ),
    # a named street without a house number after "on", "at", "off": "a flat on Coronation Street", "at
    # Beech Court", "lives on the Whitmore estate"; a care home by its name ("Sunnyvale Care Home")
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b(?i:on|at|off|near|along)\s+(?:the\s+)?(?P<value>(?!(?:{_FUNCTION_WORDS_RE})\b){_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}\s+"
            r"(?:Street|Road|Avenue|Lane|Drive|Close|Crescent|Terrace|Boulevard|Court|Gardens|Square|Estate|estate|Mews))\b"
            rf"|(?P<value2>(?!(?:{_FUNCTION_WORDS_RE})\b){_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}\s+"
            r"(?:Care|Nursing|Residential|Retirement)\s+Homes?)\b"
        ),
    ),
    # streets and blocks of other countries: "Atatürk Cad. No: 58 D: 4" (Turkey), "Door No. 12, 3rd Cross",
    # "Jayanagar 4th Block" (India), "99/12 Moo 4" (Thailand), "Rue Hamra, Bldg 14"
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b{_NAME_WORD}\s+(?:Cad\.|Caddesi|Sok\.|Sokak|Sk\.|Bulvarı|Blv\.)(?:\s*No\s*[:.]?\s*\d+[A-Z]?)?(?:\s+D\s*[:.]\s*\d+)?"
            r"|\bDoor\s+No\.?\s*\d+[A-Z]?(?:[/-]\d+)*(?:,\s*\d+(?:st|nd|rd|th)\s+(?:Cross|Main)(?:\s+Road)?)?"
            rf"|\b(?!(?:Phase|Stage|Block|Sector|Part|Level|Grade|Type|Step|Cycle|Day|Week)\s){_NAME_WORD}\s+\d+(?:st|nd|rd|th)\s+(?:Block|Stage|Phase|Sector)\b"
            r"|\b\d{1,4}/\d{1,4}\s+Moo\s+\d{1,3}\b"
            # (a building after a street and a comma: not "Building 3 of the hospital")
            r"|(?<=,\s)(?:Bldg|Building|Immeuble)\.?\s+\d{1,4}[A-Z]?\b"
        ),
    ),
    # numbered parts of an address, two or more in a row (Pakistan, the Philippines, India, Bangladesh):
    # "House 12, Street 9", "Blk 5 Lot 12 Phase 2", "H.No. 4-1-27, Sector 15"
    (
        PiiKind.ADDRESS,
        re.compile(
            r"\b(?:House|H\.\s?No\.?|Block|Blk|Lot|Phase|Sector|Street|Gali|Lane|Road|Plot)\s*(?:No\.?\s*)?\d{1,4}[A-Z]?"
            r"(?:(?:,\s*|\s+)(?:House|H\.\s?No\.?|Block|Blk|Lot|Phase|Sector|Street|Gali|Lane|Road|Plot)\s*(?:No\.?\s*)?"
            r"\d{1,4}[A-Z]?)+\b"
        ),
    ),
    # a post code and its town after a comma, as an address line ends: ", 1070 Wien", ", 105 63 Athina",
    # ", 00-514 Warszawa", ", 2200 København N" (the town no English word, unless the gazetteer knows it;
    # not a year before a surname: ", 2019 Nakamura et al.")
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"(?<=,)[ \t]*(?P<value>(?:[A-Z]{{1,2}}-)?(?:\d{{4,5}}|\d{{3}}[ ]\d{{2}}|\d{{2}}-\d{{3}})[ \t]+"
            rf"(?P<town>{_NAME_WORD})(?:[ \t]+[A-Z]\b(?!\.\w))?)(?![ \t]+et[ \t]+al\b)"
        ),
    ),
    # a post code and its town after "in" or "from": "in 80331 München" (five digits: "in 2019 Smith" is a year)
    # (the town no English word, unless the gazetteer knows it: not "from 10000 Units")
    (
        PiiKind.ADDRESS,
        re.compile(rf"\b(?:in|from|aus|à|em|en)\s+(?P<value>\d{{5}}\s+(?P<town>{_NAME_WORD}))"),
    ),
    # Vietnamese districts and wards ("Quận 1", "Phường Bến Nghé"); Chinese and Japanese addresses of two
    # or more administrative units ("杭州市西湖区"; one alone is a word too: "上市", marketed)
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b(?:Quận|Huyện|Phường|Thị xã)\s+(?:\d{{1,2}}\b|{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"
            r"|(?:[\u4e00-\u9fff]{1,6}(?:省|市|区|區|县|縣|镇|鎮|乡|鄉|村|町|丁目)){2,}"
        ),
    ),
    # a flat, apartment, suite or post-office box number
    (
        PiiKind.ADDRESS,
        re.compile(
            r"\b(?i:flat|apt\.?|apto\.?|dpto\.?|depto\.?|piso|andar|apartment|suite)\s*#?\s*\d{1,5}[A-Za-z]?\b"
            r"|\bPlot\s+(?:No\.?\s*)?\d{1,5}[A-Za-z]?\b"  # "Plot 14" (Nigeria, Kenya, India)
        ),
    ),
    (PiiKind.ADDRESS, re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")),  # UK postcode
    # an Irish Eircode: a routing key ("A96", "D6W") and four letters and digits, both in it ("X2Y3")
    (
        PiiKind.ADDRESS,
        re.compile(r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W) (?=[A-Z\d]{0,3}\d)(?=[A-Z\d]{0,3}[A-Z])[A-Z\d]{4}\b"),
    ),
    # Canadian postal code (letters D, F, I, O, Q, U never appear; the space tells it from "G2P2L2")
    (PiiKind.ADDRESS, re.compile(r"\b[A-CEGHJ-NPR-TVXY]\d[A-CEGHJ-NPR-TV-Z] \d[A-CEGHJ-NPR-TV-Z]\d\b")),
    (PiiKind.ADDRESS, re.compile(rf"\b{_NAME_WORD}(?:\s+{_NAME_WORD})?\s+(?:County|Parish|Borough)\b")),
    # an Irish county ("Co. Kerry"), a Japanese or Korean ward, city or street ("Setagaya-ku", "Gangnam-gu")
    (
        PiiKind.ADDRESS,
        re.compile(
            # (a Mexican colonia too: "Col. Roma Norte", "colonia Doctores")
            rf"\b(?:(?:Co|Col)\.|(?i:colonia))\s?{_NAME_WORD}(?:\s+(?:Norte|Sur|Centro|Oriente|Poniente))?(?<!Ltd)(?<!Inc)\b|\b[A-Z][a-z]+-(?:ku|shi|cho|machi|mura|gun|gu|dong|si|eup|myeon|ro|gil)\b(?:,?\s+\d{{3}}-\d{{4}}\b)?"
        ),
    ),
    # an Australian suburb, state and post code ("Fitzroy VIC 3065"); a Brazilian CEP ("CEP 01310-100");
    # an Indian PIN code ("PIN 560001")
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b(?:{_NAME_WORD}\s+){{1,2}}(?:NSW|VIC|QLD|SA|WA|TAS|NT|ACT)\s+\d{{4}}\b"
            r"|\bCEP:?\s*\d{5}-?\d{3}\b|\b(?:PIN|[Pp]in ?code|PIN code):?\s*\d{3}\s?\d{3}\b"
        ),
    ),
    (
        PiiKind.ADDRESS,
        re.compile(
            r"\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|"
            r"NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+\d{5}(?:-\d{4})?\b"
        ),
    ),
    (PiiKind.ADDRESS, re.compile(r"\b(?i:zip|zip code|postal code|postcode)\s*:?\s*\d{5}(?:-\d{4})?\b")),
    # a post code after its keyword in other languages, with the town after it: "PLZ 80331 München",
    # "C.P. 06600", "code postal 75011", "〒150-0002"
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"(?:\b(?:PLZ|C\.P\.|CP(?=\s*\d{{5}}\b)|(?i:c[óo]digo postal|code postal|postleitzahl|CEP))|〒)\s*:?\s*\d{{3,5}}(?:-\d{{3,4}})?"
            rf"(?:[ \t]+{_NAME_WORD})?"
        ),
    ),
    # a house number and a name without a street type, where the words say it is where someone lives
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"(?=\d){_LIVES_AT}\d{{1,5}}[A-Za-z]?,?\s+{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}"
            rf"|(?=\d)(?:(?<=\bof )|(?<=\bat )|(?<=\bto )|(?<=\bfrom ))\d{{1,5}}[A-Za-z]?,?\s+{_NAME_WORD}\s+{_NAME_WORD}"
            # a block, lot and house number (Japan, Korea), before its district and a comma: "at 3-5-12 Ebisu,"
            rf"|(?=\d)(?:(?<=\bof )|(?<=\bat )|(?<=\bfrom ))\d{{1,4}}-\d{{1,4}}(?:-\d{{1,4}})?\s+(?=[^\W\d_]{{4}}){_NAME_WORD}(?=,)"
        ),
    ),
    (
        PiiKind.NAME,
        re.compile(
            # (a second title: "Frau Dr. Schmidt"; an Irish particle first: "Mr Ó Súilleabháin")
            rf"\b{_TITLES}\.?\s+(?:{_TITLES}\.?\s+)?(?:(?:Ó|Ní|Nic|Mac|Uí)[ \t]+)?{_FULL_NAME}"
            # (a middle initial inside: "Name: Alma R. Castell", "pt Tom J. Reyes")
            rf"|\b{_NAME_CUES}\.?(?:\s+is)?\s*[:,]?\s+{_NAME_WORD}(?:[ \t]+[A-Z]\.)?[ \t]+{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?"
            rf"|\b[Nn]ame\s*(?:is|:)\s*{_NAME_WORD},\s*{_NAME_WORD}"  # "name: MacKenzie, Robert"
            # a patient's initials after the word ("initials J.K.M.", "initials: AB")
            r"|(?<=\b(?i:initials) )(?:[A-Z]\.\s?){2,4}(?![\w])|(?<=\b(?i:initials): )(?:[A-Z]\.?\s?){2,4}(?![\w])"
        ),
    ),
    # a name after a form's field label, in capitals too: "surname OKONKWO / forename Ada", "Name: REYES,
    # Ana"; a patient's initials after the word, before a comma or an age ("pt J.M., 67M")
    (
        PiiKind.NAME,
        re.compile(
            r"\b(?i:surname|forenames?|first[ -]name|last[ -]name|given[ -]names?|family[ -]name)\b[ \t]*[:=]?[ \t]*"
            # (not the next label of a form's header: "Last name First name DOB")
            r"(?!(?i:first|last|given|family|surname|forename|name|dob|date|sex|age|mrn)\b)"
            r"(?P<value>[A-Z][A-Za-z'’-]+(?:,[ \t]*[A-Z][A-Za-z'’-]+)?)"
            # ("SURNAME, Given" after a record's field or a subject line, accents and capitals too:
            # "PATIENT: ABERNATHY, CLAUDE R", "ATTENDING: PATEL, NIRAV MD", "Pt: GONZÁLEZ PÉREZ, Isabel",
            # "RE OKONJO, Tunde", "MRN 4410287 / HUANG, Mei-Ling /")
            rf"|(?:\b(?i:name|patient|pt|attending|referring|consultant|requested by|re)\b[ \t]*:?|/)[ \t]*"
            rf"(?P<value2>[{_UP}]{{2,}}(?:[ '’-][{_UP}]{{2,}})*,[ \t]*[{_UP}][{_UP}{_LOW}'’-]+(?:[ \t]+[{_UP}]\b(?!\.\w))?)"
            # "Name: NAKAMURA Haruto" (a Japanese, Chinese or Korean order, the surname in capitals)
            rf"|\b(?i:name)[ \t]*:[ \t]*(?P<value4>[{_UP}]{{2,}}[ \t]+[{_UP}][{_LOW}]+(?:-[{_UP}]?[{_LOW}]+)?)\b"
            r"|\b(?i:patient|pt)\.?[ \t]+(?P<value3>(?:[A-Z]\.){2,3})(?=[ \t]*[,(]|[ \t]+\d)"
        ),
    ),
)

# Words that start a capitalised phrase after "patient" without being a name ("patient Has chest pain").
_NOT_NAMES = {
    "has", "had", "is", "was", "with", "without", "presents", "presented", "reports", "complains", "who",
    "the", "and", "taking", "on", "in", "at", "from", "diabetes", "type", "history", "female", "male",
    "reported", "risk", "as", "safety", "care", "education", "experience", "satisfaction", "centred",
    "centered", "preferences", "perspectives", "outcomes",
}  # fmt: skip
# "Temp: 99F", "T 101F": a temperature in Fahrenheit, not an age and a sex
_TEMPERATURE_BEFORE = re.compile(r"\b(?i:temp(?:erature)?|t|fever|pyrexia|febrile)\b\W*$")
# Words that name a public helpline: the number after them is an organisation's, not a patient's
_HELPLINE_BEFORE = re.compile(
    r"\b(?i:help ?line|hotline|poison|crisis line|samaritans|lifeline|advice line|freephone)\b[^.;!?\d]{0,40}$"
)
_HELPLINE_AFTER = re.compile(
    r"[^.;!?\d]{0,24}\b(?i:help ?line|hotline|crisis line|suicide line|poison (?:control|centre|center)|advice line)\b"
)
# Keywords of product and billing codes: what follows is a drug's, a device model's or a procedure's code
_PRODUCT_CODE_BEFORE = re.compile(
    r"\b(?:NDC|GTIN|UPC|EAN|LOINC|CPT|HCPCS|SNOMED(?: CT)?|ATC|PZN)\b[\s:#]*(?i:code|no\.?|number)?[\s:#]*$"
)
# A regulator, agency or guideline body and what it did, before a date: the date of a public event
_PUBLIC_EVENT_BEFORE = re.compile(
    r"\b(?:FDA|EMA|MHRA|NICE|WHO|CDC|TGA|PMDA|CHMP|ACIP|JCVI|Health Canada)\b[^.;!?\n]{0,30}?"
    r"\b(?i:approv|licens|authori[sz]|publish|releas|withdr|recall|updat|launch|issu|recommend)\w*"
    r"[^.;!?\n]{0,30}$"
)
# cue words before which English words alone make no name ("Patient Safety Incident ...", "Contact Lens Care")
_CUE_WORDS = frozenset({"patient", "pt", "client", "contact", "carer", "guardian", "partner"})
_NUMBERED_BEFORE = re.compile(
    r"\b(?i:phase|grade|stage|class|level|cycle|table|type|step|part|week|fig|figure|dose|version|chapter"
    r"|section|day|arm|no|n|group|visit|ward|bed|bay|room)\.?\s*$"
)
_PHONE_MIN_DIGITS = 9  # shorter digit groups are doses, lab values or years
_ID_MIN_CHARS = 5  # "plan 10", "case 3": too short to identify anyone
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
_DATE_SHAPE = re.compile(
    rf"(?:{_DAY}[./-]{_MONTH}|{_MONTH}[./-]{_DAY})[./-](?:19|20)?\d{{2}}|(?:19|20)\d{{2}}[./-]{_MONTH}[./-]{_DAY}"
)
_YEAR_RANGE = re.compile(r"(?:19|20)\d{2}\s*[-–/ ]\s*(?:19|20)\d{2}")
_PRIVATE_IP = re.compile(r"(?:10|127|0)\.|192\.168\.|169\.254\.|172\.(?:1[6-9]|2\d|3[01])\.")


def _public_ipv6(text: str) -> bool:
    """An IPv6 address of three groups or more that is not loopback, link-local or unique-local (a
    device on a hospital's own network, like 192.168.x.x)."""
    if sum(bool(group) for group in text.split(":")) < 3:
        return False  # "add::", "a::b": words, not an address
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address in ipaddress.IPv6Network("fc00::/7")
    )


def _birth_date_digits(digits: str) -> bool:
    """Whether six digits read as a date, day first (DDMMYY) or year first (YYMMDD)."""
    first, middle, last = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    return 1 <= middle <= 12 and (1 <= first <= 31 or 1 <= last <= 31)


def _keep(kind: PiiKind, match: re.Match[str], context: str) -> bool:
    text, end = match.group(), match.end()
    if kind == PiiKind.PHONE and "value" in match.re.groupindex and match.group("value"):
        text = match.group("value")  # the number alone, not its cue: "text 2020 2021" is a year range
    digits = sum(ch.isdigit() for ch in text)
    if kind == PiiKind.PHONE:
        if (
            digits < (7 if match.re in (_LOCAL_PHONE, _CUED_LOCAL_PHONE) else _PHONE_MIN_DIGITS)
            # "300-1000", "200-1500": a range of round figures, not a local number
            or (match.re is _LOCAL_PHONE and all(part.endswith("0") for part in text.split("-")))
            or _HELPLINE_BEFORE.search(context, max(0, match.start() - 40), match.start())
            or _HELPLINE_AFTER.match(context, end)
        ):
            return False  # too short to dial, or a public helpline's number ("Poison Help line 1-800-...")
        if _PRODUCT_CODE_BEFORE.search(context, max(0, match.start() - 24), match.start()):
            return False  # a product's code ("NDC 0002-8215-01"), not a number to dial
        groups = re.findall(r"\d+", text)
        if re.search(r"0{6,}$", text):
            return False  # "1000000000 doses": a round figure, no number to dial
        if "." in text and re.search(r"\d\s+\d", text):
            return False  # "12.5 13.4 14.2": decimals in a list, not a number to dial
        prefixed = bool(re.match(r"\+|00", text))
        if max(map(len, groups)) <= 2 and not prefixed and not re.fullmatch(r"0\d(?:\D+\d\d)+", text):
            return False  # "10 12 14 16 18", "0 2 4 6 8 12": lists; pairs only as in "06 12 34 56 78"
        numbers = [int(group) for group in groups]
        if (
            len(groups) >= 3
            and len({len(group) for group in groups}) == 1
            and len(groups[0]) >= 3
            and all(0 < later - earlier <= 100 for earlier, later in pairwise(numbers))
        ):
            return False  # "99213 99214 99215", "2010 2015 2020": ascending codes or years, a list
        # "2010-2015", "1990 2000": year ranges, not numbers to dial
        return not _YEAR_RANGE.fullmatch(text.strip())
    if kind == PiiKind.DATE and _PUBLIC_EVENT_BEFORE.search(
        context, max(0, match.start() - 60), match.start()
    ):
        return False  # a regulator's or a publisher's date ("The FDA approved lecanemab on 6 July 2023")
    if (
        kind == PiiKind.DATE
        and "uncued" in match.re.groupindex
        and _NUMBERED_BEFORE.search(context, max(0, match.start() - 12), match.start())
    ):
        return False  # "Phase 3 Sept trial", "type 2 June update": a number of a phase or a type
    if kind == PiiKind.AGE and match.group("sexed"):
        return not _TEMPERATURE_BEFORE.search(context, max(0, match.start() - 16), match.start())
    if kind == PiiKind.ADDRESS and "town" in match.re.groupindex:
        town = match.group("town")
        if town in place_names():
            return True
        # (not a year before a word: ", 2019 Nakamura")
        return not re.match(r"(?:19|20)\d{2}[ \t]", match.group("value")) and not is_english(town.lower())
    if kind == PiiKind.NATIONAL_ID and "birth" in match.re.groupindex:
        return _birth_date_digits(match.group("birth"))
    if kind == PiiKind.IP and ":" in text:
        return _public_ipv6(text)
    if kind == PiiKind.IP:
        return all(int(part) <= 255 for part in text.split(".")) and not _PRIVATE_IP.match(text)
    if kind == PiiKind.OTHER_ID and "id" not in match.re.groupindex:  # a MAC address
        return ":" in text or any(ch.isalpha() for ch in text)  # "12-14-16-18-20-22" is a list
    if "id" in match.re.groupindex:  # an identifier after its keyword: long enough, not a year range
        token = match.group("id")
        # (nor a date: "Date of admission: 07.11.2025" is the date rule's)
        return (
            sum(ch.isalnum() for ch in token) >= _ID_MIN_CHARS
            and not _YEAR_RANGE.fullmatch(token)
            and not _DATE_SHAPE.fullmatch(token)
        )
    if kind == PiiKind.NAME and "value2" in match.re.groupindex and match.group("value2"):
        # "SURNAME, Given" in a field: the given name a known one or no English word ("Re: COPD, Asthma")
        return given_or_unknown(match.group("value2").partition(",")[2].split()[0].lower())
    if kind == PiiKind.NAME:
        words = re.findall(r"[^\W\d_'’-]+(?:['’-][^\W\d_]+)*", text)
        title = words[0].lower().rstrip(".") in _TITLE_WORDS
        rest = words[1:] if title else words[-2:]
        if title and not rest:
            return False  # a title alone
        # after a title, only an eponym noun right after the name makes it one ("Dr Foster's rule"; not
        # "Mrs Achterberg need shingles vaccines")
        # (no eponym is a Mr's, Mrs's or Ms's: "Mr Delroy Baptiste's chart" is his)
        lay_title = title and words[0].lower().rstrip(".") in {"mr", "mrs", "ms", "miss", "mx"}
        if not lay_title and (
            (eponym_follows(context, end, words=1) if title else eponym_follows(context, end))
            or product_follows(context, end)
        ):
            return False  # an eponym ("Dr Foster's rule", "Sister Mary Joseph nodule"), a maker ("Dr. Reddy's generic")
        if (
            words[0].lower() in _CUE_WORDS
            and len(words) >= 3
            and all(
                len(word) >= 3 and is_english(word.lower()) and word.lower() not in all_given_names()
                for word in words[1:]
            )
        ):
            return False  # English words after a cue, no given name: "Patient Safety Incident Response"
        if not title and re.search(r"\s[A-Z]\.\s", text) and words[1].lower() not in all_given_names():
            return False  # a middle initial after a cue follows a given name: not "Name: Vitamin D. Level"
        return not any(word.lower() in _NOT_NAMES for word in rest)
    return True


_VALUE_GROUPS = ("id", "value", "value2", "value3", "value4", "value5")


def find_pii(text: str) -> list[PiiFinding]:
    """Non-overlapping findings in text order; earlier rules win overlapping spans.

    Linear in the text: each rule's matches arrive in order, and are merged against the (sorted,
    disjoint) spans earlier rules took in one sweep, never compared pairwise."""
    taken: list[PiiFinding] = []
    for kind, pattern in _RULES:
        candidates: list[PiiFinding] = []
        for match in pattern.finditer(text):
            # an identifier after its keyword is replaced alone: "MRN [RECORD]" keeps what it was
            # (an age after "he is" likewise: "He is [AGE 90+]")
            # (the first such group of the alternative that matched: "value", "value2" ...)
            group = next(
                (
                    name
                    for name in _VALUE_GROUPS
                    if name in pattern.groupindex and match.group(name) is not None
                ),
                0,
            )
            start, end = match.span(group)
            # trim the leading blanks a rule with an optional keyword may have eaten
            while start < end and text[start].isspace():
                start += 1
            if start < end and _keep(kind, match, text):
                candidates.append(PiiFinding(kind, start, end, text[start:end]))
        taken = _merge_disjoint(taken, candidates)
    for kind, spans in (
        (PiiKind.NAME, bare_names(text)),
        (PiiKind.NAME, lower_case_names(text)),
        (PiiKind.NAME, cue_less_names(text)),
        (PiiKind.NAME, capitals_names(text)),
        (PiiKind.ADDRESS, place_spans(text)),
        (PiiKind.ADDRESS, neighbourhood_spans(text)),
    ):
        found = [PiiFinding(kind, span.start, span.end, text[span.start : span.end]) for span in spans]
        taken = _merge_disjoint(taken, found)
    names = [NameSpan(f.start, f.end) for f in taken if f.kind == PiiKind.NAME]
    if names:
        taken = _merge_covering(text, taken, names_beside(text, names), PiiKind.NAME)
    taken = _merge_covering(text, taken, _address_chains(text, taken), PiiKind.ADDRESS)
    # (whether the text speaks of a patient at all, looked for once: linear)
    patient_context = bool(_PATIENT_CONTEXT.search(text))
    figures = [finding for finding in taken if _discoverer(text, finding, patient_context)]
    # (and the figure's name where it comes again: "Who was Sir William Osler and why is Osler's node ...")
    figure_words = {word for figure in figures for word in re.findall(r"[^\W\d_]+", figure.text)}
    taken = [
        finding
        for finding in taken
        if finding not in figures
        and not (finding.kind == PiiKind.NAME and set(re.findall(r"[^\W\d_]+", finding.text)) <= figure_words)
    ]
    ages = [
        PiiFinding(PiiKind.AGE, age.start(group), age.end(group), age.group(group))
        for finding in taken
        if finding.kind == PiiKind.NAME and (age := _AGE_AFTER_NAME.match(text, finding.end))
        for group in (next(name for name in ("age", "age2", "age3") if age.group(name)),)
    ]
    taken = _merge_disjoint(taken, ages)
    return _whole_tokens(text, _with_town_after_address(text, taken))


# A name asked about for what its bearer found: "What did Alexander Fleming discover?", "How did Marshall
# and Warren's work show ...?" (a discoverer, not a patient; never after Mr/Mrs/Ms, who are patients)
_ASKED_ABOUT = re.compile(r"\b(?i:what|how|why|when|where)\s+did\s+$|(?:^|[.!?]\s*)Did\s+$")
_DISCOVERY_AFTER = re.compile(
    rf"(?:\s+(?:and|&)\s+(?:{_NAME_WORD}\s+){{0,2}}{_NAME_WORD})?"
    # their work's findings ("Marshall and Warren's work show"), or a discoverer's verb ("discover");
    # not "show" alone, which a patient does on examination
    r"(?:['’]s?\s+(?i:work|research|studies|study|experiments?|discovery|discoveries|papers?|team)"
    r"\s+(?i:show|prove|demonstrate|find|reveal|establish|change)"
    # (an adverb between: "did X actually prove", "did X really say"; what they said or wrote)
    r"|(?:\s+(?i:actually|really|first|ever|originally|famously))?\s+(?i:discover|describe|contribute|teach|invent"
    r"|propose|introduce|pioneer|develop|prove|say|write|claim|believe|observe|publish|coin))\b"
)
_FIGURE_QUESTION = re.compile(
    r"(?:^|[.!?]\s+)(?:Did|Was|Were|Who\s+was|Who\s+were|Is\s+it\s+true\s+that)\s+(?:(?:Sir|Dame|Lord|Lady)\s+)?$"
)
_PATIENT_CONTEXT = re.compile(
    r"\d|\b(?i:patient|pt|my|our|her|his|their|mum|mom|dad|wife|husband|son|daughter|bed|ward|clinic|"
    r"appointment|admitted|seen|dob|mrn|take|taking|tablets?|meds|medication|dose|allerg\w*|symptoms?)\b"
)
# a name opening the text as a topic's heading, "X and a topic —": "Florence Nightingale and sanitation —"
_TOPIC_HEADING = re.compile(r"[ \t]+(?:and|&)[ \t]+[a-z]+(?:[ \t]+[a-z]+)?[ \t]*[—–:]")


def _discoverer(text: str, finding: PiiFinding, patient_context: bool) -> bool:
    """Whether a name (or a place-named person) is asked about for a discovery (see _ASKED_ABOUT)."""
    if finding.kind not in (PiiKind.NAME, PiiKind.ADDRESS) or any(ch.isdigit() for ch in finding.text):
        return False
    if re.match(r"(?:Mrs|Mr|Ms|Miss|Mx)\b", finding.text):
        return False
    if not text[: finding.start].strip() and _TOPIC_HEADING.match(text, finding.end):
        return True
    # a yes/no or who question about a figure, in a text without a patient's context: "Was Florence
    # Nightingale a statistician?", "Did Rosalind Franklin get the credit?"
    if (
        _FIGURE_QUESTION.search(text, max(0, finding.start - 16), finding.start)
        and len(finding.text.split()) >= 2
        and not patient_context
    ):
        return True
    before = _ASKED_ABOUT.search(text, max(0, finding.start - 16), finding.start)
    return bool(before) and bool(_DISCOVERY_AFTER.match(text, finding.end))


# an age over 89 set off after a name: "Edith Crane, 97, ...", "Edith Crane (97)"
# or after "is"/"was" and a bracket: "Ahmed is 93", "Dad (Ahmed) is 93 and ..." (not "is 93 kg")
_AGE_AFTER_NAME = re.compile(
    # (past a bracket or a dash: "Edith Crane (Edie), 97,", "Mrs Crane — 97, ...")
    # (or before a full stop: "Mabel Hughes, 95. Norovirus"; spelled: "Jean Baptiste, ninety-one,")
    rf"(?:[ \t]*\))?[ \t]*(?:[,(]|[—–]|-(?=[ \t]))[ \t]*(?P<age>9\d|1[01]\d|(?i:{_AGE_WORDS}))(?=[ \t]*(?:[,;)?]|\.(?!\d)))"
    # on a list's line, before a dash: "Crane, Edith 97 - hip #"
    # (or before a comma: "Mrs Edna Pike 91, NOF")
    r"|[ \t]+(?P<age3>9\d|1[01]\d)(?=[ \t]+[-–—][ \t]|[,)])"
    r"|\)?[ \t]+(?:is|was|turned|turns|turning)[ \t]+(?:now[ \t]+)?(?P<age2>9\d|1[01]\d)\b(?![.,/:]?\d)"
    + _NOT_A_UNIT
)
# One token of an address line: a capitalised word, a short all-capitals one ("NSW", "QC"), a number
# ("2-14-7", "3º", "22240-003"), a unit word ("apto", "izq.") or a particle ("de", "das").
_ADDRESS_TOKEN = (
    rf"(?:{NAME_WORD}|[A-Z]{{1,4}}\b|\d[\w/º°ª-]*|(?i:apto|apt|piso|izq|dcha|dcho|bis|esq)\b\.?"
    r"|(?:de|da|do|dos|das|del|la|le|des|du|di)\b)"
)
_ADDRESS_SEGMENT = rf"(?P<segment>{_ADDRESS_TOKEN}(?:[ \t]+{_ADDRESS_TOKEN}){{0,4}})"
_SEGMENT_AFTER = re.compile(rf",[ \t]*{_ADDRESS_SEGMENT}(?![\w'’-])")
_SEGMENT_BEFORE = re.compile(rf"(?<![\w'’-]){_ADDRESS_SEGMENT},[ \t]*$")
# the county or town right before a post code: "Hampshire SO20 8EH"
_SEGMENT_BEFORE_POSTCODE = re.compile(rf"(?<![\w'’-]){_ADDRESS_SEGMENT}[ \t]+$")
_CAPITALISED_WORDS = re.compile(NAME_WORD)
_POSTCODE_SHAPE = re.compile(r"[A-Z]{1,2}\d")
# what may stand before the first line of an address found backwards: "from", "at", "(", an opening
_ADDRESS_OPENS = re.compile(
    r"(?:\b(?i:from|in|at|near|of|address:?|lives|village,?)|[(\[]|^|[.!?;:]|\n)[ \t]*$"
)


# a unit, flat or block of a building after its street: "221 Kingfisher Way, Unit 3"
_UNIT_SEGMENT = re.compile(
    r"(?i:unit|flat|apt|apartment|suite|block|building|floor|level|lot)\.?[ \t]+[\dA-Z]{1,4}\b"
)
# the town after an address and "in": "lives on Oak Farm estate in Wexley"
_TOWN_IN_AFTER = re.compile(rf"[ \t]+in[ \t]+(?P<segment>{NAME_WORD}(?:[ \t]+{NAME_WORD})?)(?![\w'’-])")


_LEADING_CUE = re.compile(r"(?i:from|in|at|near|lives|living|address|home|the|of|to)\b[ \t]*")


def _segment_ok(segment: str, anchored: bool) -> bool:
    """Whether one comma-separated part beside an address is more of it: no function word opening it, a
    number long enough to be a post code, house or flat ("22240-003", "3º", "2-14-7"), no state or
    country alone, and, beside a town alone (no number in it), capitalised words that are no English
    words."""
    words = segment.split()
    if _UNIT_SEGMENT.fullmatch(segment):
        return True  # "Unit 3", "Flat 2B", "Block C"
    if words[0].lower() in FUNCTION_WORDS or words[0].lower() in {"and", "or", "but", "with"}:
        return False
    if segment in larger_places():
        return False  # a state or a country: Safe Harbor keeps it ("..., Lagos, Nigeria")
    for word in words:
        if word[0].isdigit() and sum(ch.isdigit() for ch in word) < 4 and not re.search(r"[-º°ª/]", word):
            return False  # "45": an age or a dose, not a post code
        if word[0].isupper() and not word.isupper() and not anchored and is_english(word.lower()):
            return False
    return True


def _neighbourhood_parts(text: str, parts: list[NameSpan]) -> bool:
    """Whether the parts before a town name a neighbourhood: a word no dictionary knows ("Kolwezi Est"),
    no science's name ("Gynaecology") and no organisation's noun ("Civil Hospital", "… Center")."""
    words = [word for part in parts for word in _CAPITALISED_WORDS.findall(text, part.start, part.end)]
    return any(
        not not_a_name(word) and not word.lower().endswith(("logy", "logie", "logia")) for word in words
    ) and not any(word.lower() in ORGANISATION_NOUNS or word.lower() in EPONYM_NOUNS for word in words)


def _address_chains(text: str, findings: list[PiiFinding]) -> list[NameSpan]:
    """The comma-separated parts that continue an address (sorted): after it ("27 Awolowo Road, Ikoyi,
    Lagos", "Flat 204, Sai Krupa Apartments, Indiranagar, Bengaluru 560038") and before it after "from",
    "at" or a bracket ("from Kibera, Nairobi", "(Rose Cottage, Little Snoring, Norfolk ...)"). Linear:
    each part is matched once, forward from the last part reached, backward down to the last finding."""
    chains: list[NameSpan] = []
    reached = 0
    for index, finding in enumerate(findings):
        if finding.kind != PiiKind.ADDRESS or finding.end < reached:
            continue
        anchored = any(ch.isdigit() for ch in finding.text)
        end = finding.end
        while (after := _SEGMENT_AFTER.match(text, end)) and _segment_ok(after.group("segment"), anchored):
            chains.append(NameSpan(after.start("segment"), after.end()))
            end = after.end()
        town = _TOWN_IN_AFTER.match(text, end)
        if (
            town
            and _segment_ok(town.group("segment"), anchored=True)
            and not any(word.lower() in COMMON_WORDS for word in town.group("segment").split())
        ):
            chains.append(NameSpan(town.start("segment"), town.end()))
            end = town.end()
        reached = end
        floor = max(findings[index - 1].end if index else 0, chains[-1].end if chains else 0)
        start, parts = finding.start, []
        if _POSTCODE_SHAPE.match(finding.text) and (
            county := _SEGMENT_BEFORE_POSTCODE.search(text, max(floor, start - 40), start)
        ):
            parts.append(NameSpan(county.start(), county.end("segment")))
            start = county.start()
        # (any capitalised words: what opens them must say it is an address, "from", "at", a bracket)
        while before := _SEGMENT_BEFORE.search(text, max(floor, start - 80), start):
            # a cue or function word opening the part is no part of it: "From [Dharavi], Mumbai"
            segment_start = before.start()
            while lead := _LEADING_CUE.match(text, segment_start, before.end("segment")):
                segment_start = lead.end()
            segment = text[segment_start : before.end("segment")]
            if not segment or not _segment_ok(segment, anchored=True):
                break
            parts.append(NameSpan(segment_start, before.end("segment")))
            start = segment_start
            if segment_start != before.start():
                break  # the cue opens the address
        # (or where a part holds a word no dictionary knows, a neighbourhood: "..., Kolwezi Est, Lubumbashi")
        if parts and (
            _ADDRESS_OPENS.search(text, max(0, start - 12), start) or _neighbourhood_parts(text, parts)
        ):
            chains.extend(reversed(parts))
    return sorted(chains, key=lambda span: (span.start, span.end))


def _merge_covering(
    text: str, taken: list[PiiFinding], names: list[NameSpan], kind: PiiKind
) -> list[PiiFinding]:
    """`taken` with the (sorted) spans that complete a finding of `kind`: overlapping spans joined into
    one, each taking the place of the findings it holds whole or those of its kind it overlaps; a span
    that cuts another kind's finding is left out. One sweep over both sorted lists: linear."""
    joined: list[list[int]] = []
    for span in names:
        if joined and span.start < joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], span.end)
        else:
            joined.append([span.start, span.end])
    merged: list[PiiFinding] = []
    index = 0
    for start, end in joined:
        while index < len(taken) and taken[index].end <= start:
            merged.append(taken[index])
            index += 1
        inside = index
        while inside < len(taken) and taken[inside].start < end:
            inside += 1
        overlapped = taken[index:inside]
        if any(f.kind != kind and (f.start < start or f.end > end) for f in overlapped):
            continue  # cuts a finding of another kind: the next sweep step keeps that finding
        start = min([start, *(f.start for f in overlapped)])
        end = max([end, *(f.end for f in overlapped)])
        if merged and merged[-1].end > start:
            continue
        merged.append(PiiFinding(kind, start, end, text[start:end]))
        index = inside
    merged.extend(taken[index:])
    return merged


# a post code and a town after a street address: "Hauptstraße 12, 10115 Kleinstadt" (the gazetteer only
# knows towns over 15,000 people)
_POSTCODE_TOWN = re.compile(
    rf",?[ \t]+(?:[A-Z]{{1,2}}-)?(?:\d{{4,5}}|{DUTCH_POSTCODE}|\d{{2}}-\d{{3}}|\d{{3}}[ \t]\d{{2}})"
    rf"[ \t]+{NAME_WORD}"
)


def _with_town_after_address(text: str, findings: list[PiiFinding]) -> list[PiiFinding]:
    """`findings` plus the post code and town that follow a street address, where no finding has them."""
    towns = []
    for index, finding in enumerate(findings):
        if finding.kind != PiiKind.ADDRESS:
            continue
        tail = _POSTCODE_TOWN.match(text, finding.end)
        if tail is None or (index + 1 < len(findings) and findings[index + 1].start < tail.end()):
            continue
        start = finding.end + len(tail.group()) - len(tail.group().lstrip(", \t"))
        towns.append(PiiFinding(PiiKind.ADDRESS, start, tail.end(), text[start : tail.end()]))
    return _merge_disjoint(findings, towns)


# Kinds that are one token of letters and digits: redacted whole, with any part a dash or a slash joins
# on ("OHIP 1234-567-890-AB" is no phone number followed by "-AB").
_TOKEN_KINDS = frozenset(PiiKind) - {PiiKind.NAME, PiiKind.ADDRESS, PiiKind.EMAIL, PiiKind.URL}
_JOINED_AFTER = re.compile(r"(?:[-/][^\W_]+)+")
_JOINED_BEFORE = re.compile(r"[^\W_][-/#]$")  # ("ACC#88214477": the prefix a hash joins too)


def _whole_tokens(text: str, findings: list[PiiFinding]) -> list[PiiFinding]:
    """Each number-like finding grown over the parts of its token that a dash or slash joins to it,
    never into the next finding (each character is looked at once: linear)."""
    grown: list[PiiFinding] = []
    for index, finding in enumerate(findings):
        start, end = finding.start, finding.end
        if finding.kind in _TOKEN_KINDS:
            floor = grown[-1].end if grown else 0
            ceiling = findings[index + 1].start if index + 1 < len(findings) else len(text)
            joined = _JOINED_AFTER.match(text, end, ceiling)
            end = joined.end() if joined else end
            while start - 2 >= floor and _JOINED_BEFORE.search(text, start - 2, start):
                part_end = start - 1
                part_start = part_end
                while part_start > floor and text[part_start - 1].isalnum():
                    part_start -= 1
                part = text[part_start:part_end]
                if not (any(ch.isdigit() for ch in part) or part.isupper()):
                    break  # a word before a dash ("Tel-0161 …") is no part of the number
                start = part_start
        if (start, end) != (finding.start, finding.end):
            finding = PiiFinding(finding.kind, start, end, text[start:end])
        grown.append(finding)
    return grown


def _merge_disjoint(taken: list[PiiFinding], candidates: list[PiiFinding]) -> list[PiiFinding]:
    """`taken` plus every candidate that overlaps none of it, sorted by start (both inputs are)."""
    merged: list[PiiFinding] = []
    index = 0
    for candidate in candidates:
        while index < len(taken) and taken[index].end <= candidate.start:
            merged.append(taken[index])
            index += 1
        if index < len(taken) and taken[index].start < candidate.end:
            continue  # overlaps a span an earlier rule took
        merged.append(candidate)
    merged.extend(taken[index:])
    return merged


def pii_kinds(text: str) -> set[PiiKind]:
    """The kinds of identifier found in `text`."""
    return {finding.kind for finding in find_pii(text)}


def redact(text: str, findings: list[PiiFinding] | None = None) -> str:
    """Replace every finding with a placeholder such as [NAME] or [DATE]."""
    findings = find_pii(text) if findings is None else findings
    out, last = [], 0
    for finding in sorted(findings, key=lambda f: f.start):
        out.append(text[last : finding.start])
        out.append(PLACEHOLDERS[finding.kind])
        last = finding.end
    out.append(text[last:])
    return "".join(out)


def describe(findings: list[PiiFinding]) -> str:
    """'a person's name, a full date (…)' — each kind once, in order of appearance."""
    labels = list(dict.fromkeys(finding.label for finding in findings))
    return ", ".join(labels)

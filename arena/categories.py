"""Question categories: every question gets a task type and a specialty, offline, by rules.

Bank questions carry their data set's category; typed questions had none, so no board could answer
"which model is best for dosing questions". `classify_question` gives every question

- a task type (`TaskType`): diagnosis, treatment/dosing, test interpretation, patient
  communication, documentation, or education/recall (the fallback: a question of fact);
- a specialty (`SPECIALTIES`), or "general" when no specialty's terms appear.

Rules, not a model: each task type has cue patterns with weights, the highest total wins, and ties
go to the more specific type (documentation > communication > test interpretation > treatment >
diagnosis > education). Specialties are scored by their vocabulary. Nothing downloads, and a
question classifies in microseconds, so the board can classify 100k questions.

Accuracy on 150 labelled questions written for this purpose (tests/fixtures/question_categories.jsonl)
is printed by tests/test_categories.py. The rules were written with that set in view, so treat its
figure as an upper bound for typed questions in the wild.

    from arena.categories import classify_question
    classify_question("Paracetamol dose for a 12 kg toddler with fever?")
    # QuestionCategory(task='treatment', specialty='paediatrics')

Run as: python -m pytest tests/test_categories.py -q -s
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class TaskType(StrEnum):
    """What the question asks the model to do."""

    DIAGNOSIS = "diagnosis"
    TREATMENT = "treatment"  # treatment, management and dosing
    TEST_INTERPRETATION = "test_interpretation"
    PATIENT_COMMUNICATION = "patient_communication"
    DOCUMENTATION = "documentation"
    EDUCATION = "education"  # recall of facts, mechanisms, definitions


TASK_LABELS = {
    TaskType.DIAGNOSIS: "Diagnosis",
    TaskType.TREATMENT: "Treatment / dosing",
    TaskType.TEST_INTERPRETATION: "Test interpretation",
    TaskType.PATIENT_COMMUNICATION: "Patient communication",
    TaskType.DOCUMENTATION: "Documentation",
    TaskType.EDUCATION: "Education / recall",
}

# Ties go to the earlier (more specific) type.
_PRIORITY = (
    TaskType.DOCUMENTATION,
    TaskType.PATIENT_COMMUNICATION,
    TaskType.TEST_INTERPRETATION,
    TaskType.TREATMENT,
    TaskType.DIAGNOSIS,
    TaskType.EDUCATION,
)

_TASK_CUES: dict[TaskType, tuple[tuple[str, float], ...]] = {
    TaskType.DOCUMENTATION: (
        (
            r"\b(write|draft|complete|compose|prepare|turn these notes into|help me (write|document))\b.{0,40}"
            r"\b(summary|letter|note|notes|report|entry|referral|handover|template|certificate|form|documentation)\b",
            3.0,
        ),
        (
            r"\b(discharge summary|referral letter|clinic letter|soap note|sbar|handover|operation note|progress note|"
            r"ward round entry|sick note|death certificate|incident report|medication reconciliation)\b",
            2.0,
        ),
        (r"\b(document|for the (patient )?record|in the notes|notes format|electronic record)\b", 2.0),
        (r"\bsummari[sz]e\b.{0,40}\b(record|notes|discussion)\b", 2.0),
    ),
    TaskType.PATIENT_COMMUNICATION: (
        (
            r"\b(explain|tell|talk to|say to|discuss|counsel|reassure|break (the )?(bad )?news|respond to|answer)\b"
            r".{0,60}\b(patient|parent|parents|family|relatives|couple|teenager|woman|man|child|mother|father|my patient)s?\b",
            2.5,
        ),
        (
            r"\b(what (do|should) i (say|tell)|how (do|should|can) i (tell|explain|talk|say|discuss|reassure|encourage|"
            r"respond|communicate|counsel|break))\b",
            2.5,
        ),
        (
            r"\b(plain[- ]language|simple words|words they understand|low health literacy|compassionate|gently|"
            r"without making them feel|give me words|so they can decide)\b",
            2.5,
        ),
        (r"\b(refusing|insists|worried|anxious|angry|asks ['\"]?how long)\b", 1.0),
        (r"\b(consent)\b", 0.5),
    ),
    TaskType.TEST_INTERPRETATION: (
        (
            r"\b(interpret|interpretation|how (do|should) i (read|interpret)|what does (this|that|it|the result|this result)"
            r"( combination| pattern| finding| change)? (mean|show|indicate|suggest|tell)|what does .{0,40} (mean|indicate|show|suggest|tell me))\b",
            2.5,
        ),
        (
            r"\b(results?|level|levels|report says|came back|shows|showed|grew|positive|rose|dropped|reading)\b",
            1.0,
        ),
        (
            r"\b(ecg|ekg|abg|x-ray|xray|mri|ct|echo|spirometry|csf|urine dip|blood count|blood culture|liver tests|"
            r"troponin|hba1c|tsh|psa|d-dimer|lactate|calprotectin|egfr|beta-hcg|ferritin|bilirubin|sodium|potassium|"
            r"calcium|pth|fev1)\b",
            1.0,
        ),
        (r"\b\d+(\.\d+)?\s*(mmol/l|mmol/mol|mu/l|mg/dl|ng/ml|ng/l|g/l|fl|kpa|µmol/l|umol/l|µg/g|%)", 1.5),
        (
            r"\b(significant|contaminant or real|is (that|this) (diabetes|an mi|acceptable)|above the .{0,20} line)\b",
            1.0,
        ),
        (r"\b(finding|pattern)\b", 0.5),
    ),
    TaskType.TREATMENT: (
        (r"\b(dose|doses|dosing|dosage|mg|titrate|titration|how much)\b", 2.0),
        (
            r"\b(treat|treatment|treated|manage|management|managed|first[- ]line|prescribe|start(ing)?|switch|add next|"
            r"give|therapy|antibiotic|antihypertensive|antidepressant|medication|drug|eradication|adjusted|"
            r"adjustments|monitored|what now)\b",
            1.5,
        ),
        (r"\b(should .{0,40} (get|take|be given|start)|best (drug|antihypertensive|treatment))\b", 1.0),
    ),
    TaskType.DIAGNOSIS: (
        (
            r"\b(diagnosis|differential|likely cause|most likely|what (do|should) (you|i) suspect|suspect|"
            r"rule(d)? out|what('s| is) (going on|happening|wrong)|what is (this|it)|which condition|what could (this|cause|it)|"
            r"could (this|these symptoms) be|what (conditions|diagnosis) (could|should|fits)|possible causes|is this)\b",
            2.0,
        ),
        (
            r"\b(presents?|presenting|has|with)\b.{0,80}\b(pain|fever|cough|rash|headache|vomiting|swollen|lump|nodes|"
            r"weakness|droop|jaundice|mood|thirsty)\b",
            1.0,
        ),
        (r"\b\d+-year-old|\byear-old\b|\bold\b", 0.5),
    ),
    TaskType.EDUCATION: (
        (r"^\s*(what (is|are)|which|list|describe|explain the|how do|where|why do|define)\b", 1.0),
        (
            r"\b(mechanism|pathophysiology|function|role of|inheritance|criteria|features|causes of|side effects of|"
            r"branches|blood supply|milestones|difference between|components|absorbed|transmitted)\b",
            1.5,
        ),
    ),
}

SPECIALTIES = (
    "cardiology",
    "respiratory",
    "infectious_disease",
    "endocrinology",
    "neurology",
    "gastroenterology",
    "renal_urology",
    "obstetrics_gynaecology",
    "paediatrics",
    "mental_health",
    "dermatology",
    "oncology_haematology",
    "musculoskeletal",
    "emergency",
    "general",
)

_SPECIALTY_TERMS: dict[str, str] = {
    "cardiology": r"chest pain|heart|cardi\w*|coronary|atrial|fibrillation|ecg|ekg|st elevation|troponin|statin|"
    r"warfarin|apixaban|murmur|syncope|ejection fraction|angina|myocardial|\bmi\b|hypertension|beta blockers?|"
    r"echo\b|heart block|sinus rhythm|exertional",
    "respiratory": r"asthma|copd|inhaler|spacer|pneumothorax|pleur\w*|spirometry|fev1|breathless\w*|cough|"
    r"\bchest x-ray\b|hilar|surfactant|lungs?|abg|paco2|tuberculosis|\btb\b|haemoptysis|pneumonia",
    "infectious_disease": r"antibiotic\w*|infection|fever|sepsis|septic|meningitis|\butis?\b|malaria|travell\w*|hiv|"
    r"lyme|vaccine\w*|organism|blood culture|staphylococc\w*|csf|needlestick|cold\b|"
    r"rigors|non-blanching",
    "endocrinology": r"diabet\w*|insulin|glargine|hba1c|thyroid|tsh|\bt4\b|levothyroxine|goitre|ketoacidosis|"
    r"cortisol|calcium|pth|obesity|weight|glucose|thirsty",
    "neurology": r"seizure|epilep\w*|stroke|migraine|headache|nerve|wrist drop|facial droop|neurolog\w*|"
    r"multiple sclerosis|periventricular|white matter|internal capsule|glasgow coma|driving",
    "gastroenterology": r"liver|alt\b|jaundice|gallbladder|colonoscopy|endoscopy|colitis|crohn|bowel|"
    r"helicobacter|pylori|calprotectin|faecal|periumbilical|iliac fossa|appendic\w*|b12|gi\b|vomit\w*",
    "renal_urology": r"kidney|renal|egfr|dialysis|potassium|urine|urolog\w*|haematuria|loin|nephro\w*|"
    r"loop of henle|ramipril|frequency|nocturia|stream|hesitancy|\buti\b|sodium",
    "obstetrics_gynaecology": r"pregnan\w*|miscarriage|caesarean|labour|epidural|periods?|menstrual|uterus|"
    r"pelvic|hcg|scan\b|ectopic",
    "paediatrics": r"child\w*|toddler|infant|newborn|baby|paediatric\w*|pediatric\w*|croup|\bparents?\b|mmr|"
    r"milestones|kg toddler|\d+-week|weeks old|6 weeks|stridor|teenager",
    "mental_health": r"depress\w*|mood|anxiety|psychosis|psychiatr\w*|bipolar|self-harm|suicid\w*|lithium|"
    r"antidepressant|therapy|mental state|racing thoughts",
    "dermatology": r"rash|skin|plaques|scaly|eczema|psoriasis|scabies|isotretinoin|melanoma|pigmented lesion|"
    r"dermatolog\w*|biopsy|itchy|creases",
    "oncology_haematology": r"cancer|oncolog\w*|chemotherapy|neutropeni\w*|lymph nodes?|lymphoma|anaemia|"
    r"iron|\bhb\b|mcv|ferritin|psa|haemophilia|cisplatin|mdt|night sweats|how long do i have",
    "musculoskeletal": r"gout|toe|joint|knee|back pain|fracture|radius|rotator cuff|osteo\w*|arthritis|"
    r"musculoskeletal",
    "emergency": r"anaphylaxis|adrenaline|overdose|resuscitation|icu|lactate|death certificate|died",
}
_SPECIALTY_PATTERNS = {
    name: re.compile(r"\b(?:" + terms + r")", re.I) for name, terms in _SPECIALTY_TERMS.items()
}
_TASK_PATTERNS = {
    task: tuple((re.compile(pattern, re.I), weight) for pattern, weight in cues)
    for task, cues in _TASK_CUES.items()
}


@dataclass(frozen=True)
class QuestionCategory:
    """A question's task type and specialty."""

    task: TaskType
    specialty: str

    @property
    def label(self) -> str:
        """'Treatment / dosing · paediatrics', as the board's filter shows it."""
        return f"{TASK_LABELS[self.task]} · {self.specialty.replace('_', ' ')}"


def task_scores(question: str) -> dict[TaskType, float]:
    """Each task type's cue weight in the question (a cue counts once)."""
    return {
        task: sum(weight for pattern, weight in patterns if pattern.search(question))
        for task, patterns in _TASK_PATTERNS.items()
    }


def classify_task(question: str) -> TaskType:
    """The task type with the highest cue weight; education when no cue fires."""
    scores = task_scores(question)
    best = max(scores.values())
    if best <= 0:
        return TaskType.EDUCATION
    return next(task for task in _PRIORITY if scores[task] == best)


def classify_specialty(question: str) -> str:
    """The specialty whose terms appear most often; 'general' when none does (ties: SPECIALTIES order)."""
    counts = {name: len(pattern.findall(question)) for name, pattern in _SPECIALTY_PATTERNS.items()}
    best = max(counts.values())
    if best == 0:
        return "general"
    return next(name for name in SPECIALTIES if counts.get(name) == best)


def classify_question(question: str) -> QuestionCategory:
    """Task type and specialty of a question, by rules (offline, deterministic)."""
    return QuestionCategory(classify_task(question), classify_specialty(question))

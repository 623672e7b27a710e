"""Multiple-choice scoring by option log-likelihood, the method of lm-evaluation-harness.

Letter extraction reads the option a model *writes*; tiny models defeat it (SmolLM2-135M answers "D"
to almost every MedQA item). Here nothing is generated: the model reads the project's prompt (system
text, question, lettered options and MCQ instruction through the model's own chat template) followed
by the answer cue "Answer:", and each option's continuation (" A" or " A. <option text>") is scored
by the sum of its tokens' log-probabilities. The prediction is the argmax (lm-eval's `acc`) or the
argmax of the log-likelihood per character of the choice (lm-eval's `acc_norm`).

Tokenisation follows lm-eval's `HFLM` with `add_bos_token=False` exactly, so the cross-check
(`arena/eval/lm_eval_check.py`) compares the same numbers: trailing spaces of the context move to the
continuation, the continuation's tokens are those of `encode(context + continuation)` past
`len(encode(context))`, nothing special is added (the chat template already renders every special
token), and an input longer than the model's window keeps its last tokens.

Run as (a library; the evaluation CLI calls it):
    python -m arena.evaluate --model smollm2-135m --adapter none --data medqa.jsonl --mcq-scoring loglik
or from Python: `score_items(model, tokenizer, records)` then `predictions(scores, normalised=False)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from finetune.data import MCQRecord
from finetune.prompt import render_prompt

ChoiceFormat = Literal["letter", "option"]
CHOICE_FORMATS: tuple[ChoiceFormat, ...] = ("letter", "option")
ANSWER_CUE = "Answer:"  # the start of the training target "Answer: B. <option>" (finetune/prompt.py)
TARGET_DELIMITER = " "  # lm-eval's default between context and choice


class LoglikInputError(ValueError):
    """An item or setting the scorer cannot score (no options, unknown gold letter, bad format)."""


@dataclass(frozen=True)
class ItemScores:
    """One question's option log-likelihoods, in the order of `labels`."""

    id: str
    gold: str
    labels: tuple[str, ...]
    choices: tuple[str, ...]  # the scored choice strings, without the delimiter
    loglik: tuple[float, ...]

    def predicted(self, *, normalised: bool = False) -> str:
        """lm-eval's acc (raw argmax) or acc_norm (argmax of log-likelihood per character)."""
        values = [
            ll / len(choice) if normalised else ll
            for ll, choice in zip(self.loglik, self.choices, strict=True)
        ]
        best = max(range(len(values)), key=values.__getitem__)  # first maximum, like numpy's argmax
        return self.labels[best]


def mcq_context(tokenizer: Any, record: MCQRecord, *, thinking: bool = False) -> str:
    """The text every option continues: the project's rendered prompt, then the answer cue."""
    return render_prompt(tokenizer, record.question, record.options, thinking=thinking) + ANSWER_CUE


def mcq_choices(record: MCQRecord, choice_format: ChoiceFormat) -> list[str]:
    """The choice strings: the letters ("A"), or letter and text ("A. Aspirin", the training target's form)."""
    if choice_format == "letter":
        return list(record.options)
    if choice_format == "option":
        return [f"{letter}. {text}" for letter, text in record.options.items()]
    raise LoglikInputError(f"choice format must be one of {list(CHOICE_FORMATS)}, not {choice_format!r}")


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's HFLM._encode_pair for a causal model with add_bos_token=False."""
    if not context:
        raise LoglikInputError("the context must not be empty")
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    context_ids = tokenizer.encode(context, add_special_tokens=False)
    continuation_ids = whole[len(context_ids) :]
    if not continuation_ids:
        raise LoglikInputError(f"the continuation {continuation!r} encodes to no tokens after its context")
    return context_ids, continuation_ids


def _max_length(model: Any) -> int:
    config = getattr(model, "config", None)
    for attribute in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048  # lm-eval's default when the config names no window


def continuation_logliks(
    model: Any,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
) -> list[float]:
    """Sum of log P(continuation token | everything before it) for each (context, continuation) pair.

    Identical model inputs run once: with a one-token continuation (" A") the input is the context
    alone, so every option of a question is read off one forward pass (lm-eval shares them the same
    way). Sequences are right-padded with an attention mask, so a row's logits never see its padding;
    longest first, so a batch wastes little on padding.
    """
    import torch

    if batch_size < 1:
        raise LoglikInputError(f"batch_size must be at least 1, got {batch_size}")
    window = max_length or _max_length(model)
    device = next(model.parameters()).device
    # lm-eval feeds (context + continuation)[-(window + 1):][:-1] and reads the last len(cont) logits.
    inputs = [tuple((ctx + cont)[-(window + 1) :][:-1]) for ctx, cont in pairs]
    readers: dict[tuple[int, ...], list[int]] = {}
    for index, key in enumerate(inputs):
        readers.setdefault(key, []).append(index)
    unique = sorted(readers, key=len, reverse=True)
    results = [0.0] * len(pairs)
    with torch.inference_mode():
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            longest = len(batch[0])
            ids = torch.zeros((len(batch), longest), dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, key in enumerate(batch):
                ids[row, : len(key)] = torch.tensor(key)
                mask[row, : len(key)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for row, key in enumerate(batch):
                end = len(key)
                for index in readers[key]:
                    continuation = pairs[index][1]
                    positions = torch.log_softmax(logits[row, end - len(continuation) : end].float(), dim=-1)
                    target = torch.tensor(continuation, device=positions.device).unsqueeze(-1)
                    results[index] = float(positions.gather(-1, target).sum())
    return results


def score_items(
    model: Any,
    tokenizer: Any,
    records: Sequence[MCQRecord],
    *,
    choice_format: ChoiceFormat = "letter",
    batch_size: int = 8,
    thinking: bool = False,
) -> list[ItemScores]:
    """Every option of every record scored in batches; one ItemScores per record, in order."""
    pairs: list[tuple[list[int], list[int]]] = []
    layout: list[tuple[MCQRecord, list[str]]] = []
    for record in records:
        if not record.options:
            raise LoglikInputError(f"item {record.id!r} has no options")
        if record.answer not in record.options:
            raise LoglikInputError(
                f"item {record.id!r}: gold {record.answer!r} is not one of its options {list(record.options)}"
            )
        context = mcq_context(tokenizer, record, thinking=thinking)
        choices = mcq_choices(record, choice_format)
        pairs.extend(encode_pair(tokenizer, context, TARGET_DELIMITER + choice) for choice in choices)
        layout.append((record, choices))
    values = continuation_logliks(model, pairs, batch_size=batch_size)
    scores, cursor = [], 0
    for record, choices in layout:
        scores.append(
            ItemScores(
                id=record.id,
                gold=record.answer,
                labels=tuple(record.options),
                choices=tuple(choices),
                loglik=tuple(values[cursor : cursor + len(choices)]),
            )
        )
        cursor += len(choices)
    return scores


def predictions(scores: Sequence[ItemScores], *, normalised: bool = False) -> list[str]:
    """Each item's predicted option: the log-likelihood argmax (per character when normalised)."""
    return [item.predicted(normalised=normalised) for item in scores]


def labels_of(scores: Sequence[ItemScores]) -> list[str]:
    """Every option letter in the set, in first-seen order (the classes of macro P/R/F1)."""
    seen: dict[str, None] = {}
    for item in scores:
        seen.update(dict.fromkeys(item.labels))
    return list(seen)

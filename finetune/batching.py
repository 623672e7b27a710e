"""Records to token ids and micro-batches: tokenisation with answer-only labels, length-grouped
seeded batch order, padding, and the data step of the recipe (one source or a weighted mix).

    python -c "from finetune.batching import batch_order; print(batch_order([], 2, 0, True))"
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from finetune.config import FinetuneConfig
from finetune.data import (
    CleaningRules,
    LoadedData,
    Record,
    Split,
    load_dataset_source,
    split_records,
    target_text,
)
from finetune.mixing import load_mix
from finetune.prompt import THINK_OPEN, render_prompt
from finetune.registry import END_OF_TURN, ModelSpec

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX over the prompt: the loss is on answer tokens only


@dataclass
class Tokenized:
    examples: list[Example]
    too_long: int = 0  # records whose prompt alone leaves no room for an answer: dropped, counted


# An example keeps its whole prompt; the answer end is cut, but at least this many answer tokens
# must fit, or the record is dropped (and counted) rather than trained with a truncated question.
MIN_ANSWER_TOKENS = 16


def end_of_turn_text(tokenizer: Any, spec: ModelSpec) -> str:
    """The family's end-of-turn token where the tokenizer knows it (Phi-3 `<|end|>`), else eos."""
    marker = END_OF_TURN[spec.chat_template]
    marker_id = tokenizer.convert_tokens_to_ids(marker)
    if isinstance(marker_id, int) and marker_id != tokenizer.unk_token_id:
        return marker
    return tokenizer.eos_token or ""


def tokenize(
    records: list[Record],
    tokenizer: Any,
    max_seq_length: int,
    desc: str = "tokenize",
    *,
    end_of_turn: str | None = None,
    thinking: bool = False,
) -> Tokenized:
    """Prompt + answer + end-of-turn token ids, labels on the answer only.

    The whole prompt is always kept (a question cut from the left trains an answer to nothing);
    an answer too long for `max_seq_length` loses its end.
    """
    from tqdm import tqdm

    end = (tokenizer.eos_token or "") if end_of_turn is None else end_of_turn
    out = Tokenized(examples=[])
    for record in tqdm(records, desc=desc, unit="ex", leave=False):
        options = getattr(record, "options", None)
        prompt = render_prompt(tokenizer, record.question, options, thinking=thinking)
        target = target_text(record, thinking=thinking)
        if prompt.endswith(f"{THINK_OPEN}\n") and target.startswith(f"{THINK_OPEN}\n"):
            target = target[len(THINK_OPEN) + 1 :]  # the template already opened the think block
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(target + end, add_special_tokens=False)["input_ids"]
        room = max_seq_length - len(prompt_ids)
        if room < min(MIN_ANSWER_TOKENS, len(answer_ids)):
            out.too_long += 1
            continue
        answer_ids = answer_ids[:room]
        out.examples.append(Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids))
    return out


def batch_order(
    examples: list[Example], batch_size: int, seed: int, group_by_length: bool
) -> list[list[int]]:
    """Micro-batches of example indices for one epoch.

    With grouping, examples are shuffled, cut into chunks of 16 batches, sorted by length inside
    each chunk, and the resulting batches shuffled again: padding shrinks while the order stays random.
    """
    rng = random.Random(seed)
    indices = list(range(len(examples)))
    rng.shuffle(indices)
    if group_by_length:
        chunk = batch_size * 16
        indices = [
            i
            for start in range(0, len(indices), chunk)
            for i in sorted(indices[start : start + chunk], key=lambda j: len(examples[j].input_ids))
        ]
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Pad a micro-batch into input ids, attention mask and answer-only labels."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def micro_batches(
    examples: list[Example], batch_size: int, seed: int, group: bool
) -> Iterator[list[Example]]:
    """Endless stream of micro-batches, a fresh seeded order each epoch."""
    epoch = 0
    while True:
        for batch in batch_order(examples, batch_size, seed + epoch, group):
            yield [examples[i] for i in batch]
        epoch += 1


def prepare_data(config: FinetuneConfig) -> tuple[LoadedData, Split, list[dict[str, Any]] | None]:
    """Load, clean and split the configured data: one source, or `data.mix` (with its provenance rows)."""
    settings = config.data
    rules = CleaningRules(
        min_question_chars=settings.min_question_chars,
        max_question_chars=settings.max_question_chars,
        min_answer_chars=settings.min_answer_chars,
        max_answer_chars=settings.max_answer_chars,
    )
    mix = None
    if settings.mix:
        data, mix = load_mix(settings.mix, limit=settings.limit, rules=rules, seed=settings.split_seed)
    else:
        data = load_dataset_source(
            settings.source, limit=settings.limit, rules=rules, seed=settings.split_seed
        )
    return data, split_records(data.records, seed=settings.split_seed), mix

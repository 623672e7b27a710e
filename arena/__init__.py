"""The arena: blind side-by-side battles, the vote log, ratings and automatic evaluation.

Layers, outermost first: `ui` (Gradio, thin) → `service` (battle flow, validation) →
a `backend` (`engine`: 4-bit bases, adapters switched by name; `vllm_backend`; `remote_backend`)
and `store` (votes.db); `ratings` and
`metrics` are pure functions over stored rows. Run the app with ``python app.py``, the
evaluation with ``python -m arena.evaluate --help``, the export with ``python -m arena.export``.
"""

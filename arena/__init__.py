"""The arena: blind side-by-side battles, the vote log, ratings and automatic evaluation.

Layers, outermost first: `ui` (Gradio, thin) → `service` (battle flow, validation) → the sub-packages
`serving` (backends behind one contract), `store` (the vote store) and `eval` (automatic evaluation);
`space` runs it on a Hugging Face Space. The pure low modules (`ratings`, `leaderboard`, `board`, `pii`,
`integrity`, `votes`, `adapters`) stand on top of arena/. Run the app with ``python app.py``, the
evaluation with ``python -m arena.evaluate --help``, the export with ``python -m arena.export``.
"""

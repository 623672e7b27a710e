"""Automatic evaluation: answer a data set with arena contestants, score it, store it beside the votes.

`arena/evaluate.py` (above this package) is the command; `runner` answers (cached, resumable) through any serving backend; `scoring`,
`metrics`, `text_overlap`, `mcq_letters` and `mcq_loglik` score; `results`, `report` and `studies_report`
read and present what is stored.

Run as: python -m arena.evaluate --help
"""

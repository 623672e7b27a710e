"""Running as a Hugging Face Space: where the votes live and how they survive a restart (`sync`), the
embedded model files (`embedded`), and a local build-and-battle check of the Space (`check`).

Run as: python -m arena.space.check
"""

"""The vote store: battles, votes, judgement and evaluation tables, behind one `VoteStore` contract.

`protocol` is the contract and the store's own exceptions; `schema` declares the tables once, with the
migrations as an ordered list; `battles` (SQLite, the embedded default) and `postgres` implement it;
`opening` chooses one from ``--votes-url`` / ``$MEDARENA_VOTES_URL``; `copying` moves a votes.db.

Run as: python -m arena.store copy --from votes.db --to postgresql://...   (tests: tests/test_store.py)
"""

"""`python -m arena.store copy --from votes.db --to postgresql://…`: copy a vote database into another
store, idempotent and resumable (arena/store/copying.py).

Run as: python -m arena.store copy --from votes.db --to postgresql://arena@db.internal/medarena
"""

from arena.store.copying import main

raise SystemExit(main())

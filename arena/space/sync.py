"""Where the arena keeps its votes on a Hugging Face Space, and how they survive a restart.

A Space's own disk is wiped on every restart. Votes are kept by either (or both) of:

- persistent storage: when ``/data`` is mounted and writable, the database is ``/data/votes.db``;
- a dataset repository: with ``MEDARENA_VOTES_DATASET=owner/name`` and ``HF_TOKEN`` set, a
  ``huggingface_hub.CommitScheduler`` pushes a snapshot of the database (``votes.db``, read back at
  start-up) and the readable votes export (``votes.jsonl``, the same rows as ``python -m arena.export``)
  every ``MEDARENA_VOTES_SYNC_MINUTES`` (default 5) and once more on shutdown. A failed push is logged
  and retried on the next tick; the snapshot always holds every vote, so a late push loses none.

Nothing here touches the network unless ``MEDARENA_VOTES_DATASET`` is set. ``app.py`` calls
``open_vote_storage`` and shows its warnings as the UI's start-up banner, e.g. that votes are not kept.

    from arena.space.sync import open_vote_storage
    storage = open_vote_storage(os.environ)          # -> .store (ArenaStore), .sync, .warnings
    ...
    storage.close()                                  # final push (also registered with atexit)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena.export import write_votes_jsonl
from arena.store.battles import ArenaStore, default_db_path
from arena.store.opening import VOTES_URL_ENV, open_store, votes_location
from arena.store.protocol import VoteStore
from finetune.paths import VOTES_DB_ENV

log = logging.getLogger(__name__)

DATASET_ENV = "MEDARENA_VOTES_DATASET"
TOKEN_ENV = "HF_TOKEN"
SYNC_MINUTES_ENV = "MEDARENA_VOTES_SYNC_MINUTES"
SPACE_ENV = "SPACE_ID"  # set by Hugging Face on every Space
PERSISTENT_DIR = Path("/data")  # where a Space mounts its persistent storage
SNAPSHOT_NAME = "votes.db"
EXPORT_NAME = "votes.jsonl"


class SyncUnavailable(RuntimeError):
    """The dataset sync cannot run; the message is one sentence for the person running the Space."""


@dataclass(frozen=True)
class StoragePlan:
    """Where the database goes and whether that place outlives a restart."""

    db_path: Path
    persistent: bool
    on_space: bool


@dataclass(frozen=True)
class SyncConfig:
    """The dataset repository the votes are pushed to; built from the environment, or absent."""

    repo_id: str
    token: str
    every_minutes: float = 5.0
    endpoint: str | None = None  # $HF_ENDPOINT, read here so it applies whenever huggingface_hub was imported

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SyncConfig | None:
        """``None`` when no dataset is configured; ``SyncUnavailable`` when it is configured wrongly."""
        repo_id = environ.get(DATASET_ENV, "").strip()
        if not repo_id:
            return None
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise SyncUnavailable(f"{DATASET_ENV}={repo_id!r} is not a dataset id of the form owner/name.")
        token = environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise SyncUnavailable(f"{DATASET_ENV} is set but {TOKEN_ENV} is not, so votes cannot be pushed.")
        minutes_text = environ.get(SYNC_MINUTES_ENV, "5").strip()
        try:
            minutes = float(minutes_text)
        except ValueError:
            minutes = 0.0
        if not minutes > 0:
            raise SyncUnavailable(
                f"{SYNC_MINUTES_ENV}={minutes_text!r} must be a positive number of minutes."
            )
        endpoint = environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None
        return cls(repo_id=repo_id, token=token, every_minutes=minutes, endpoint=endpoint)


def plan_storage(environ: Mapping[str, str], persistent_dir: Path = PERSISTENT_DIR) -> StoragePlan:
    """``$MEDARENA_VOTES_DB`` if set; on a Space, ``/data/votes.db`` when that is writable; else the checkout's.

    The checkout's ``votes.db`` is only ephemeral on a Space (its disk is rebuilt on restart); on a machine of one's
    own it is as persistent as any file.
    """
    on_space = bool(environ.get(SPACE_ENV, "").strip())
    if environ.get(VOTES_DB_ENV, "").strip():
        return StoragePlan(default_db_path(environ), persistent=True, on_space=on_space)
    if on_space and _writable_dir(persistent_dir):
        return StoragePlan(persistent_dir / "votes.db", persistent=True, on_space=True)
    return StoragePlan(default_db_path(environ), persistent=not on_space, on_space=on_space)


def _writable_dir(path: Path) -> bool:
    if not path.is_dir():
        return False
    probe = path / f".medarena-write-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def _has_battles(db_path: Path) -> bool:
    """True when the file holds at least one battle (a missing file or table holds none)."""
    if not db_path.exists():
        return False
    connection = sqlite3.connect(db_path)
    try:
        tables = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='battles'")
        if tables.fetchone() is None:
            return False
        return connection.execute("SELECT 1 FROM battles LIMIT 1").fetchone() is not None
    finally:
        connection.close()


def _hub_error_sentence(error: Exception) -> str:
    """The first line of a hub error, without the request id and URL noise that follows it."""
    response = getattr(error, "response", None)
    status = f"HTTP {response.status_code}: " if response is not None else ""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{status}{first}".rstrip(".")


class VoteSync:
    """Reads the votes back from the dataset at start-up and pushes them there on a schedule."""

    def __init__(self, config: SyncConfig, folder: Path) -> None:
        from huggingface_hub import HfApi

        self.config = config
        self.folder = folder
        self.api = HfApi(endpoint=config.endpoint, token=config.token)
        self._scheduler: Any = None

    @classmethod
    def connect(cls, config: SyncConfig, db_path: Path) -> VoteSync:
        """Check the token, then restore ``db_path`` from the dataset's snapshot if the local file holds
        no battle (a Space restarted on a fresh disk). Raises ``SyncUnavailable`` with one sentence;
        nothing is pushed after a failed read-back, so the dataset's votes are never overwritten."""
        sync = cls(config, Path(tempfile.mkdtemp(prefix="medarena-vote-sync-")))
        try:
            sync._check_token_and_restore(db_path)
        except SyncUnavailable:
            sync._remove_folders()
            raise
        return sync

    def _check_token_and_restore(self, db_path: Path) -> None:
        import httpx
        from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

        repo_id = self.config.repo_id
        try:
            self.api.whoami()
        except HfHubHTTPError as error:
            raise SyncUnavailable(
                f"{TOKEN_ENV} was refused by the Hub ({_hub_error_sentence(error)}), so votes are not "
                f"synced to {repo_id}."
            ) from error
        except (httpx.HTTPError, OSError) as error:  # no route to the Hub at all
            raise SyncUnavailable(
                f"The Hub could not be reached ({_hub_error_sentence(error)}), so votes are not synced to {repo_id}."
            ) from error
        if _has_battles(db_path):
            log.info("%s already holds battles; not restoring it from %s", db_path, repo_id)
            return
        try:
            self._restore(db_path)
        except (RemoteEntryNotFoundError, RepositoryNotFoundError):
            log.info("dataset %s has no vote snapshot yet; starting with an empty database", repo_id)
        except (HfHubHTTPError, httpx.HTTPError, OSError, sqlite3.DatabaseError) as error:
            raise SyncUnavailable(
                f"The votes in dataset {repo_id} could not be read back ({_hub_error_sentence(error)}), "
                "so sync is off for this run rather than overwrite them."
            ) from error

    def _remove_folders(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self._download_dir, ignore_errors=True)

    @property
    def _download_dir(self) -> Path:
        return self.folder.parent / f"{self.folder.name}-download"

    def _restore(self, db_path: Path) -> None:
        from huggingface_hub import hf_hub_download

        downloaded = Path(
            hf_hub_download(
                self.config.repo_id,
                SNAPSHOT_NAME,
                repo_type="dataset",
                token=self.config.token,
                endpoint=self.config.endpoint,
                cache_dir=self._download_dir,
            )
        )
        _check_snapshot(downloaded)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.restore")
        try:
            shutil.copyfile(downloaded, temporary)
            for suffix in ("-wal", "-shm", "-journal"):  # leftovers of an empty database would corrupt it
                db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
            temporary.replace(db_path)
        finally:
            temporary.unlink(missing_ok=True)
        log.info("restored %s from dataset %s", db_path, self.config.repo_id)

    def start(self, store: ArenaStore) -> None:
        """Create the dataset if needed and start pushing ``store`` on the configured schedule."""
        import httpx
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self._scheduler = _snapshot_scheduler_class()(
                store=store,
                repo_id=self.config.repo_id,
                repo_type="dataset",
                folder_path=self.folder,
                every=self.config.every_minutes,
                token=self.config.token,
                private=True,
                hf_api=self.api,
            )
        except (HfHubHTTPError, httpx.HTTPError, OSError) as error:
            self._remove_folders()
            raise SyncUnavailable(
                f"The dataset {self.config.repo_id} could not be created or opened "
                f"({_hub_error_sentence(error)}), so votes are not synced."
            ) from error
        log.info(
            "votes are pushed to dataset %s every %g min", self.config.repo_id, self.config.every_minutes
        )

    def push_now(self) -> Future:
        """Push at once (queued behind any push under way); the future raises if the push failed."""
        if self._scheduler is None:
            raise RuntimeError("VoteSync.start() has not run.")
        return self._scheduler.trigger()

    def close(self, timeout_s: float = 60.0) -> None:
        """Push what is left, then stop the schedule. Failures are logged, never raised."""
        if self._scheduler is None:
            return
        try:
            try:
                self._scheduler.trigger().result(timeout=timeout_s)
            except RuntimeError:
                # At interpreter exit (atexit, e.g. after SIGTERM) no new future can be scheduled; push
                # on this thread, as CommitScheduler's own atexit hook does. Nothing else pushes by now.
                self._scheduler.push_to_hub()
        except Exception as error:
            log.error("final push of the votes to %s failed: %s", self.config.repo_id, error)
        self._scheduler.stop()
        self._scheduler = None
        self._remove_folders()


def _check_snapshot(path: Path) -> None:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        connection.close()
    if result != "ok":
        raise sqlite3.DatabaseError(f"the snapshot failed SQLite's integrity check ({result})")


def write_snapshot(store: ArenaStore, folder: Path) -> bool:
    """Write a consistent copy of the database and its votes export into ``folder``.

    A file is replaced only when its content changed, so an idle arena makes no commits (the
    scheduler uploads files whose modification time moved). Returns True when something changed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".medarena-snapshot-", dir=folder.parent))
    try:
        snapshot = work / SNAPSHOT_NAME
        source = sqlite3.connect(store.path)
        target = sqlite3.connect(snapshot)
        try:
            source.backup(target)  # a consistent copy even while voters write
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        finally:
            target.close()
            source.close()
        write_votes_jsonl(store, work / EXPORT_NAME)
        changed = False
        for name in (SNAPSHOT_NAME, EXPORT_NAME):
            new, current = work / name, folder / name
            if current.exists() and _digest(current) == _digest(new):
                continue
            new.replace(current)
            changed = True
        return changed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot_scheduler_class() -> type:
    """A CommitScheduler that refreshes the snapshot before each push (imported lazily: no hub import
    unless a dataset is configured)."""
    from huggingface_hub import CommitScheduler

    class SnapshotScheduler(CommitScheduler):
        def __init__(self, *, store: ArenaStore, **kwargs: Any) -> None:
            self.store = store  # set before the base class starts its thread, which pushes at once
            super().__init__(**kwargs)

        def push_to_hub(self) -> Any:
            with self.lock:
                write_snapshot(self.store, self.folder_path)
            try:
                return super().push_to_hub()
            except Exception as error:
                # The snapshot stays in the folder with its new mtime, so the next tick pushes it again.
                log.warning(
                    "pushing the votes to %s failed (%s); the next tick retries",
                    self.repo_id,
                    _hub_error_sentence(error),
                )
                raise

    return SnapshotScheduler


@dataclass
class VoteStorage:
    """The opened store, its sync (if any) and the messages the UI shows as a banner."""

    store: VoteStore
    plan: StoragePlan
    sync: VoteSync | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def votes_kept(self) -> bool:
        """Whether votes survive a restart (a persistent volume or a dataset sync)."""
        return self.plan.persistent or self.sync is not None

    def close(self) -> None:
        """Push the last votes to the dataset (if syncing) and stop the scheduler."""
        if self.sync is not None:
            self.sync.close()


def open_vote_storage(
    environ: Mapping[str, str] | None = None,
    *,
    db_path: Path | None = None,
    votes_url: str | None = None,
    persistent_dir: Path = PERSISTENT_DIR,
) -> VoteStorage:
    """Decide where votes live, restore them from the dataset if configured, open the store, start sync.

    A Postgres URL (``app.py --votes-url`` or ``$MEDARENA_VOTES_URL``, e.g. a Space secret) wins: the
    votes live on that server, which keeps them, so there is no dataset sync. Otherwise ``db_path``
    (``app.py --db``) overrides the plan. A dataset misconfiguration or a refused token never stops the
    arena: it becomes one warning sentence and the arena serves without sync.
    """
    environment = dict(os.environ if environ is None else environ)
    plan = plan_storage(environment, persistent_dir)
    location = votes_location(environment, cli_url=votes_url)  # ValueError: a URL that is not postgresql://
    if not isinstance(location, Path):
        store = open_store(location)
        warnings = list(store.warnings)
        if environment.get(DATASET_ENV, "").strip():
            warnings.append(
                f"{VOTES_URL_ENV} is set, so votes go to Postgres and {DATASET_ENV} is not synced to."
            )
        return VoteStorage(
            store=store, plan=StoragePlan(plan.db_path, True, plan.on_space), warnings=warnings
        )
    if db_path is not None:
        plan = StoragePlan(db_path, persistent=True, on_space=plan.on_space)
    warnings: list[str] = []
    sync: VoteSync | None = None
    try:
        config = SyncConfig.from_env(environment)
        if config is not None:
            sync = VoteSync.connect(config, plan.db_path)
    except SyncUnavailable as error:
        warnings.append(str(error))
        sync = None
    store = ArenaStore(plan.db_path)
    warnings.extend(store.warnings)
    if sync is not None:
        try:
            sync.start(store)
        except SyncUnavailable as error:
            warnings.append(str(error))
            sync = None
    storage = VoteStorage(store=store, plan=plan, sync=sync, warnings=warnings)
    if not storage.votes_kept:
        storage.warnings.insert(
            0,
            "Votes are not kept: this Space has no persistent storage and no dataset to sync to, so every "
            f"vote is lost when it restarts (mount /data, or set {DATASET_ENV} and {TOKEN_ENV}).",
        )
    return storage

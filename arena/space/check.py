"""Build the Space the way Hugging Face builds it, start it, and run one battle through it.

    python -m arena.space.check                 # fresh venv + fresh model cache; prints each step
    python -m arena.space.check --keep          # keep the work folder (venv, app copy, logs)

Steps, as a Gradio Space's build and runtime do them:

1. read ``python_version`` and ``sdk_version`` from the README's front matter;
2. create a fresh virtual environment (no system site-packages) and run, from a folder holding
   only ``requirements.txt``: ``pip install -r requirements.txt gradio[oauth]==<sdk_version>
   "uvicorn>=0.14.0" spaces`` (the packages a Gradio Space adds);
3. copy the repository's files (``git ls-files``: tracked plus untracked-but-not-ignored) into
   ``app/`` and start ``python app.py`` there with the Space's variables (``SPACE_ID``,
   ``SYSTEM=spaces``, ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``), an empty ``HOME`` and an empty
   ``MEDARENA_CACHE``, so the embedded bases come from what the requirements installed;
4. check HTTP 200 on ``/``, the "votes are not kept" banner (no ``/data``, no dataset), and one
   battle through ``gradio_client``: ask, stream both answers, vote, contestants revealed.

Differences from a real Space, on purpose: pip's cache is used (a Space builds with
``--no-cache-dir``), and an index in requirements.txt that cannot be reached from here (PyTorch's
CPU index) is left out of the copy, with a note: torch's CPU wheel then comes from this machine's pip
configuration. The check exits 0 when every step passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from finetune.registry import embedded_models

ROOT = Path(__file__).resolve().parents[2]
# What a Gradio Space installs beside requirements.txt (huggingface/hub-docs, "Spaces dependencies").
SPACE_EXTRAS = ("gradio[oauth]=={sdk}", "uvicorn>=0.14.0", "spaces")
BANNER = "Votes are not kept"
QUESTION = "What is the first-line treatment for an uncomplicated urinary tract infection in adults?"


class CheckFailed(RuntimeError):
    """One step of the check failed; the message says which and why."""


def front_matter(readme: Path) -> dict[str, str]:
    """The README's Space front matter as key/value pairs."""
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    if not match:
        raise CheckFailed(f"{readme} has no YAML front matter, so it is not a Space.")
    fields = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip().strip("\"'")
    for key in ("sdk", "sdk_version", "python_version", "app_file"):
        if not fields.get(key):
            raise CheckFailed(f"The README front matter has no {key}.")
    return fields


def step(message: str) -> float:
    """Print a progress line and return the time it started."""
    print(f"[space-check] {message}", flush=True)
    return time.monotonic()


def reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether `url` answers within `timeout_s` (the check needs PyPI)."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return True  # the server answered
    except (urllib.error.URLError, OSError):
        return False
    return True


def space_requirements(source: Path, target_dir: Path) -> Path:
    """Copy requirements.txt alone into ``target_dir``, leaving out indexes this machine cannot reach."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        option = re.match(r"\s*(--extra-index-url|--index-url|-i)\s+(\S+)", line)
        if option and not reachable(option.group(2)):
            step(
                f"note: {option.group(2)} is not reachable here; torch comes from this machine's pip configuration"
            )
            continue
        lines.append(line)
    shutil.rmtree(target_dir, ignore_errors=True)  # the folder holds requirements.txt and nothing else
    target_dir.mkdir(parents=True)
    target = target_dir / "requirements.txt"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def build_venv(work: Path, sdk_version: str) -> Path:
    """A fresh virtual environment with requirements.txt installed, as the Space builds it."""
    start = step("creating a fresh virtual environment (no system site-packages)")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    python = venv / "bin" / "python"
    requirements = space_requirements(ROOT / "requirements.txt", work / "build")
    extras = [extra.format(sdk=sdk_version) for extra in SPACE_EXTRAS]
    step(
        f"pip install -r requirements.txt {' '.join(extras)}  (in {requirements.parent}, nothing else there)"
    )
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "-r", "requirements.txt", *extras],
        cwd=requirements.parent, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise CheckFailed(f"requirements.txt did not install:\n{result.stderr[-4000:]}")
    step(f"installed in {time.monotonic() - start:.0f} s")
    return python


def copy_repository(target: Path) -> None:
    """The files a Space clones: tracked ones plus new files not ignored (so uncommitted work is checked)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def space_environment(work: Path, port: int) -> dict[str, str]:
    """The variables a Space sets, an empty home and model cache; pip's own settings are kept."""
    keep = {
        key: value for key, value in os.environ.items() if key.startswith("PIP_") or key in ("LANG", "TZ")
    }
    home = work / "home"
    home.mkdir(exist_ok=True)
    return {
        **keep,
        "PATH": f"{work / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "MEDARENA_CACHE": str(work / "medarena-cache"),
        "SPACE_ID": "medarena/space-check",
        "SPACE_AUTHOR_NAME": "medarena",
        "SPACE_REPO_NAME": "space-check",
        "SPACE_HOST": f"127.0.0.1:{port}",
        "SYSTEM": "spaces",
        "GRADIO_SERVER_NAME": "127.0.0.1",  # a Space binds 0.0.0.0; this shared machine stays on loopback
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "MEDARENA_MAX_NEW_TOKENS": "32",  # a Space variable; short answers keep the check's battle quick
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Poll `url` until it answers HTTP 200 or `timeout_s` passes; True if it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(f"app.py exited with status {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    raise CheckFailed(f"app.py did not answer HTTP 200 within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


def one_battle(url: str) -> str:
    """Ask, stream both answers, vote "tie", and return the reveal text (names both contestants)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/ask", "/cast_2"):
        if name not in endpoints:
            raise CheckFailed(f"the app has no {name} endpoint; it has {', '.join(sorted(endpoints))}")
    # /ask checks the question, starts the battle and streams both answers in one generator event.
    # Its outputs (State left out): question, answer A, answer B, reveal, details, rationale, status, ...
    job = client.submit(QUESTION, api_name="/ask")
    final = job.result()
    answers = next(
        (
            out[1:3]
            for out in reversed(job.outputs())
            if all(isinstance(v, str) and v.strip() for v in out[1:3])
        ),
        None,
    )
    if answers is None or "Which one is better" not in str(final[6]):
        raise CheckFailed(f"the battle did not produce two answers: {job.outputs()[-3:]}")
    # The vote buttons are wired in the order model_a, model_b, tie, both_bad: /cast_2 is "Tie".
    voted = client.predict(False, False, False, False, "space check", "", "", api_name="/cast_2")
    status, reveal = voted[0], voted[1]
    if "stored" not in str(status) or "Model A" not in str(reveal):
        raise CheckFailed(f"the vote was not stored: {voted[:2]}")
    board = client.predict("", "", api_name="/show_leaderboard")
    if "**1** rated votes" not in str(board[0]):
        raise CheckFailed(f"the leaderboard does not count the vote: {board[0]}")
    # Every embedded base must be a contestant: the model cache started empty, so each came from
    # the packages requirements.txt installed (or, for SmolLM2, the wheel app.py fetched).
    missing = [spec.display_name for spec in embedded_models() if spec.display_name not in str(board[1])]
    if missing:
        raise CheckFailed(f"the arena started without the embedded base(s) {', '.join(missing)}")
    return str(reveal)


def run_check(work: Path, startup_timeout_s: float) -> None:
    """Install, start, battle, vote and read the leaderboard as a Space would; raise on a failed step."""
    fields = front_matter(ROOT / "README.md")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if fields["python_version"] != running:
        raise CheckFailed(f"the Space runs Python {fields['python_version']}; this check runs {running}.")
    python = build_venv(work, fields["sdk_version"])
    app_dir = work / "app"
    for stale in (app_dir, work / "home", work / "medarena-cache"):  # a reused --work starts empty too
        shutil.rmtree(stale, ignore_errors=True)
    copy_repository(app_dir)
    port = free_port()
    log = work / "app.log"
    start = step(f"starting {fields['app_file']} as a Space would (log: {log})")
    with log.open("w") as handle:
        process = subprocess.Popen(
            [str(python), fields["app_file"]], cwd=app_dir, env=space_environment(work, port),
            stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process, log, startup_timeout_s)
        step(f"HTTP 200 after {time.monotonic() - start:.0f} s")
        with urllib.request.urlopen(f"{url}config", timeout=10) as response:
            config = response.read().decode()
        if BANNER not in config:
            raise CheckFailed("the page does not show that votes are not kept (no /data, no dataset)")
        step("the page shows the 'votes are not kept' banner")
        start = time.monotonic()
        reveal = one_battle(url)
        step(f"one battle completed through gradio_client in {time.monotonic() - start:.0f} s")
        step("reveal: " + " ".join(reveal.split())[:200])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    """python -m arena.space.check: run the Space check and report each step."""
    parser = argparse.ArgumentParser(prog="python -m arena.space.check", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for HTTP 200")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="medarena-space-check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        run_check(work, args.startup_timeout)
    except CheckFailed as error:
        print(f"[space-check] FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        if args.keep:
            step(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    step(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The sandbox every piece of untrusted code runs in: recipe schema probes, local recipe jobs, custom graders.

Built on bubblewrap (``bwrap``, Linux namespaces), not on filters of our own. The process gets:

- a private mount namespace whose root is empty but for read-only binds of what running Python needs
  (/usr, /lib*, /bin, /etc, the interpreter's prefixes and site-packages, our package) and what the caller
  names (a recipe folder, model weights read-only; a job's own folder writable); the server's data dir,
  files dir and model cache stay hidden even where they lie under a bound folder;
- a private PID namespace with a fresh /proc (no other process, no other environment to read), a private
  /tmp, IPC and UTS namespaces, no network at all unless asked (jobs call the server back over loopback);
- an environment built from an allow-list (no secret but what the caller adds, e.g. the job's own key);
- rlimits (processes, file size, address space), ``--die-with-parent`` (it dies with the server) and
  ``--new-session``;
- when the server runs as root, a separate unprivileged uid (``SANDBOX_UID``), dropped inside the sandbox
  with setpriv. A user namespace would map its uid back to root outside, owner of every root file.

If the machine cannot sandbox (no bwrap, namespaces refused), the server says so at start and refuses
untrusted code with ``SandboxUnavailable``, unless ``ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true``.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import adaptive_engine
from adaptive_engine.server.errors import SandboxUnavailable

if TYPE_CHECKING:
    from adaptive_engine.server.config import Settings

log = logging.getLogger("adaptive_engine.sandbox")

# The folder that holds our package: user code imports the recipe runtime from it.
PACKAGE_ROOT = str(Path(adaptive_engine.__file__).resolve().parents[1])
# `nobody`: who untrusted code runs as when the server is root.
SANDBOX_UID = 65534
SANDBOX_GID = 65534
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Parts of /sys that GPU and CPU libraries read (devices, topology); nothing of the server's.
SYSFS_DIRS = ("/sys/block", "/sys/bus", "/sys/class", "/sys/dev", "/sys/devices")
# Variables of the server's environment user code may see: locale, time zone, library search path, the
# offline switches and thread counts operators set. Everything else (keys, database URLs) stays out.
PASSED_ENV = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "LD_LIBRARY_PATH",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
)
CHECK_TIMEOUT_S = 60.0
GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class Limits:
    """rlimits of a sandboxed process (None: the server's own)."""

    processes: int
    file_bytes: int | None = None
    address_space_bytes: int | None = None
    # Size of the private /tmp (RAM-backed); None: the kernel's default for tmpfs.
    tmp_bytes: int | None = None


# Importing a recipe: its module-level code may import torch (a few GB of address space).
PROBE_LIMITS = Limits(processes=1024, file_bytes=64 * MiB, address_space_bytes=16 * GiB, tmp_bytes=256 * MiB)
# The grader runner sets its own memory limit and forbids writing files.
GRADER_LIMITS = Limits(processes=1024, tmp_bytes=16 * MiB)
# Training reserves large address ranges (CUDA) and writes checkpoints of any size: only a process cap.
JOB_LIMITS = Limits(processes=16384)


@dataclass
class Launch:
    """What to start: ``argv`` with ``env`` in ``cwd`` (a folder of this machine)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    sandboxed: bool


def user_env(extra: dict[str, str] | None = None, *, home: str = "/tmp") -> dict[str, str]:
    """The environment of a process that runs user code: an allow-list of the server's, our package
    importable, and what the caller adds."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "PYTHONPATH": PACKAGE_ROOT,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": home,
            "TMPDIR": "/tmp",
        }
    )
    env.update(extra or {})
    return env


def _python_dirs() -> list[Path]:
    """The interpreter, its standard library and site-packages, and our package, as given and resolved
    (a venv's python is a link into its base prefix)."""
    dirs = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        PACKAGE_ROOT,
        os.path.dirname(sys.executable),
        *site.getsitepackages(),
    }
    user_site = site.getusersitepackages()
    if site.ENABLE_USER_SITE and user_site and os.path.isdir(user_site):
        dirs.add(user_site)
    found: set[Path] = set()
    for entry in dirs:
        for path in (Path(os.path.abspath(entry)), Path(entry).resolve()):
            if path.is_dir():
                found.add(path)
    return sorted(p for p in found if not any(parent in found for parent in p.parents))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _depth(path: Path) -> int:
    return len(path.parts)


class Sandbox:
    """Wraps commands that run user code; a service (``start`` checks once that it works and logs why not)."""

    def __init__(self, settings: Settings) -> None:
        data_dir = Path(settings.data_dir).resolve()
        # The server's state (database, key file, datasets, recipes): hidden from every sandbox.
        self.private = [data_dir, Path(settings.resolved_files_dir).resolve()]
        self.model_cache = Path(settings.model_cache_dir or data_dir / "models").resolve()
        self.allow_unsandboxed = settings.allow_unsandboxed_code
        self.as_root = os.geteuid() == 0
        self._tools: dict[str, str] = {}
        self.reason: str | None = None
        self._checked = False
        self._lock = asyncio.Lock()

    # -- service ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.ready()

    async def stop(self) -> None:
        return None

    async def ready(self) -> None:
        """Checks once, by running a trivial sandboxed command, whether sandboxing works here; logs the outcome."""
        if self._checked:
            return
        async with self._lock:
            if self._checked:
                return
            self.reason = await asyncio.to_thread(self._check)
            self._checked = True
            if self.reason is None:
                who = f"uid {SANDBOX_UID}" if self.as_root else "the server's uid in a user namespace"
                log.info("user code (recipes, schema probes, custom graders) runs in a bubblewrap sandbox as %s", who)
            elif self.allow_unsandboxed:
                log.warning(
                    "USER CODE RUNS UNSANDBOXED (ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true): the sandbox cannot "
                    "work on this machine: %s. Recipes and custom graders can read this server's data "
                    "and secrets.",
                    self.reason,
                )
            else:
                log.error(
                    "user code cannot be sandboxed on this machine: %s. Recipe uploads, local recipe jobs "
                    "and custom graders are refused until it can (install bubblewrap; allow user "
                    "namespaces), or ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true accepts the risk.",
                    self.reason,
                )

    async def require(self, what: str) -> None:
        """SandboxUnavailable naming the reason, where user code cannot run here (no sandbox, not allowed bare)."""
        await self.ready()
        if self.reason is not None and not self.allow_unsandboxed:
            raise SandboxUnavailable(
                f"{what} refused: this server cannot sandbox user code ({self.reason}); the operator can "
                "install bubblewrap, or set ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true to accept the risk"
            )

    def _check(self) -> str | None:
        needed = ["bwrap", "prlimit"] + (["setpriv"] if self.as_root else [])
        for tool in needed:
            path = shutil.which(tool)
            if not path or not os.access(path, os.X_OK):
                hint = " (Debian package bubblewrap)" if tool == "bwrap" else " (util-linux)"
                return f"'{tool}' was not found{hint}"
            self._tools[tool] = path
        argv = self._wrap(
            [sys.executable, "-c", "import adaptive_engine.recipe.loader"],
            cwd=Path("/tmp"),
            read_only=(),
            writable=(),
            hidden=self.private + [self.model_cache],
            network=False,
            gpus=False,
            limits=PROBE_LIMITS,
        )
        try:
            done = subprocess.run(
                argv,
                env=user_env(),
                cwd="/",
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CHECK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"a trivial sandboxed command failed: {exc}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            return (
                f"a trivial sandboxed command failed (exit status {done.returncode}:"
                f" {lines[-1] if lines else 'no output'})"
            )
        return None

    # -- commands -----------------------------------------------------------------------------------------
    async def launch(
        self,
        what: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        limits: Limits,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        network: bool = False,
        gpus: bool = False,
        expose_model_cache: bool = False,
    ) -> Launch:
        """How to run ``argv`` (user code) for ``what`` (named in the refusal): in the sandbox, or, where the
        machine cannot sandbox and the operator allowed it, as a plain child that dies with the server.
        ``cwd`` and the bound paths are paths of this machine, seen at the same place inside."""
        await self.require(what)
        if self.reason is not None:
            setpriv = shutil.which("setpriv")
            prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
            return Launch([*prefix, *argv], env, str(cwd), sandboxed=False)
        hidden = list(self.private)
        if not expose_model_cache:
            hidden.append(self.model_cache)
        read = [Path(p) for p in read_only]
        if expose_model_cache:
            # Made now: the server converts into it later, and a bind shows what appears in it.
            self.model_cache.mkdir(parents=True, exist_ok=True)
            read.append(self.model_cache)
        wrapped = self._wrap(
            list(argv),
            cwd=Path(cwd),
            read_only=read,
            writable=[Path(p) for p in writable],
            hidden=hidden,
            network=network,
            gpus=gpus,
            limits=limits,
        )
        return Launch(wrapped, env, "/", sandboxed=True)

    def hand_over(self, *folders: Path) -> None:
        """Make folders the sandboxed code writes (a job's own) its own: owned by the sandbox's uid when
        the server is root (otherwise both are the same user)."""
        if not self.as_root or self.reason is not None:
            return
        for folder in folders:
            os.chown(folder, SANDBOX_UID, SANDBOX_GID)

    def _wrap(
        self,
        argv: list[str],
        *,
        cwd: Path,
        read_only: Sequence[Path],
        writable: Sequence[Path],
        hidden: Sequence[Path],
        network: bool,
        gpus: bool,
        limits: Limits,
    ) -> list[str]:
        # Mounts, each (path, order, arguments); applied parents first, so a folder hidden inside a bound
        # one is covered after that bind, and a folder bound inside a hidden one is bound after the cover.
        mounts: list[tuple[Path, int, list[str]]] = []

        def bind(path: Path, option: str) -> None:
            mounts.append((path, 0, [option, str(path), str(path)]))

        for name in SYSTEM_DIRS:
            path = Path(name)
            if path.is_symlink():
                mounts.append((path, 0, ["--symlink", os.readlink(path), name]))
            elif path.is_dir():
                bind(path, "--ro-bind")
        for path in _python_dirs():
            if not any(_inside(path, Path(d)) for d in SYSTEM_DIRS if Path(d).is_dir() and not Path(d).is_symlink()):
                bind(path, "--ro-bind")
        mounts.append((Path("/proc"), 0, ["--proc", "/proc"]))
        mounts.append((Path("/dev"), 0, ["--dev", "/dev"]))
        # Writable by anyone, sticky, like the real ones (the sandbox's uid is not their owner).
        mounts.append((Path("/dev/shm"), 0, ["--perms", "1777", "--tmpfs", "/dev/shm"]))
        tmp = ["--size", str(limits.tmp_bytes)] if limits.tmp_bytes else []
        mounts.append((Path("/tmp"), 0, ["--perms", "1777", *tmp, "--tmpfs", "/tmp"]))
        for path in read_only:
            if path.exists():
                bind(path.resolve(), "--ro-bind")
        for path in writable:
            bind(path.resolve(), "--bind")
        if gpus:
            for name in SYSFS_DIRS:
                if os.path.isdir(name):
                    bind(Path(name), "--ro-bind")
            for device in sorted(glob.glob("/dev/nvidia*")):
                bind(Path(device), "--dev-bind")
        for path in hidden:
            # Covered wherever it would show: under a bound folder, or as one (a bind of the data dir itself).
            if any(_inside(path, m[0]) for m in mounts if m[1] == 0 and m[2][0] != "--symlink"):
                mounts.append((path, 1, ["--tmpfs", str(path)]))
        mounts.sort(key=lambda m: (_depth(m[0]), m[1]))

        command = [self._tools["bwrap"]]
        made: set[Path] = set()
        for path, _, arguments in mounts:
            # Folders bwrap creates on the way are root-only (0700) otherwise: the uid of the sandbox
            # could not walk to its binds.
            for parent in reversed(list(path.parents)[:-1]):
                if parent not in made:
                    command += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            command += arguments
            made.add(path)
        command += [
            "--chdir",
            str(cwd),
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
        ]
        if not network:
            command.append("--unshare-net")
        if not self.as_root:
            # The server's own uid, in a user namespace that cannot nest another.
            command += ["--unshare-user", "--disable-userns"]
        command.append("--")
        if self.as_root:
            command += [
                self._tools["setpriv"],
                f"--reuid={SANDBOX_UID}",
                f"--regid={SANDBOX_GID}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        command += [self._tools["prlimit"], f"--nproc={limits.processes}", "--core=0"]
        if limits.file_bytes is not None:
            command.append(f"--fsize={limits.file_bytes}")
        if limits.address_space_bytes is not None:
            command.append(f"--as={limits.address_space_bytes}")
        command.append("--")
        return command + argv

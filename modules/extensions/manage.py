"""Managing installed extensions for the Extensions tab and the API: list, enable/disable (saved as
"disabled_extensions" in config.json, read at the next start), install from a git URL or a local folder,
check for updates and update (git).

Installing or switching extensions runs other people's code on this machine, so when the app listens
beyond this computer every changing action is refused unless --enable-insecure-extension-access is given
(A1111 does the same).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TYPE_CHECKING

from modules.extensions import loader

if TYPE_CHECKING:
    from modules.runtime import Runtime

DISABLED_KEY = "disabled_extensions"
GIT_TIMEOUT = 120
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class ExtensionAccessError(PermissionError):
    """A changing action was refused because the app is reachable from other machines."""


class ExtensionManageError(RuntimeError):
    """Installing or updating failed; the message says why (git's own words included)."""


@dataclass
class InstalledExtension:
    name: str
    path: Path
    builtin: bool
    enabled: bool
    version: str | None  # short commit of a git clone
    remote: str | None  # origin URL of a git clone
    branch: str | None
    commit_date: int | None = None  # of HEAD, seconds since the epoch


@dataclass
class UpdateStatus:
    name: str
    state: (
        str  # "latest", "behind" (an update is available), "unknown" (not a git clone / no upstream), "error"
    )
    message: str = ""


# ----- security -------------------------------------------------------------------------------------------


def refusal(args: Any) -> str | None:
    """Why changing extensions is refused with these flags, or None when it is allowed."""
    if getattr(args, "enable_insecure_extension_access", False):
        return None
    reachable = (
        getattr(args, "listen", False)
        or getattr(args, "share", False)
        or not _is_loopback(getattr(args, "server_name", None))
    )
    if not reachable:
        return None
    return (
        "Installing, updating and switching extensions is disabled: the app listens beyond this computer "
        "(--listen, --share or a non-local --server-name), and an extension can run any code on this "
        "machine. Restart with --enable-insecure-extension-access to allow it."
    )


def ensure_allowed(args: Any) -> None:
    reason = refusal(args)
    if reason:
        raise ExtensionAccessError(reason)


def _is_loopback(server_name: str | None) -> bool:
    if not server_name or server_name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(server_name).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a public address


# ----- listing and switching ---------------------------------------------------------------------------------


def disabled_names(runtime: Runtime) -> list[str]:
    """The extensions switched off (from the next start)."""
    try:
        value = runtime.options.get(DISABLED_KEY)
    except KeyError:  # never set: the key has no definition (it is not shown among the settings)
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def list_extensions(
    runtime: Runtime, user_dir: Path = loader.USER_DIR, builtin_dir: Path = loader.BUILTIN_DIR
) -> list[InstalledExtension]:
    """Every extension folder in load order, with what git knows about it."""
    disabled = set(disabled_names(runtime))
    found = loader.discover(disabled, dirs=((builtin_dir, True), (user_dir, False)))
    return [describe(ext) for ext in found]


def describe(ext: loader.Extension) -> InstalledExtension:
    """An extension with what git knows about its own folder (nothing for a plain folder)."""
    date = _git_out(ext.path, "log", "-1", "--format=%ct")
    return InstalledExtension(
        name=ext.name,
        path=ext.path,
        builtin=ext.builtin,
        enabled=ext.enabled,
        version=_git_out(ext.path, "rev-parse", "--short", "HEAD"),
        remote=_git_out(ext.path, "config", "--get", "remote.origin.url"),
        branch=_git_out(ext.path, "rev-parse", "--abbrev-ref", "HEAD"),
        commit_date=int(date) if date and date.isdigit() else None,
    )


def set_enabled(
    runtime: Runtime,
    name: str,
    enabled: bool,
    user_dir: Path = loader.USER_DIR,
    builtin_dir: Path = loader.BUILTIN_DIR,
) -> None:
    """Switch an extension on or off from the next start (saved in config.json)."""
    ensure_allowed(runtime.args)
    if name not in {e.name for e in list_extensions(runtime, user_dir, builtin_dir)}:
        raise ValueError(f"unknown extension {name!r}")
    disabled = [n for n in disabled_names(runtime) if n != name]
    if not enabled:
        disabled.append(name)
    runtime.options.set(DISABLED_KEY, sorted(disabled))


# ----- installing and updating -------------------------------------------------------------------------------


def install(
    runtime: Runtime, source: str, name: str | None = None, user_dir: Path = loader.USER_DIR
) -> InstalledExtension:
    """Install from a git URL (cloned) or a local folder (copied) into extensions/<name>; it loads at the
    next start (its install.py runs then)."""
    ensure_allowed(runtime.args)
    local = Path(source).expanduser()
    folder_name = name or _name_from_source(source)
    if not folder_name or folder_name.startswith(".") or "/" in folder_name or "\\" in folder_name:
        raise ValueError(f"cannot make an extension folder name from {source!r}; give a name")
    target = user_dir / folder_name
    if target.exists():
        raise ExtensionManageError(f"extension folder {target} already exists")
    user_dir.mkdir(parents=True, exist_ok=True)
    # Fetch into a temporary folder beside the target, then rename: a failure never leaves half an extension.
    staging = Path(tempfile.mkdtemp(prefix=f".installing-{folder_name}-", dir=user_dir))
    try:
        if local.is_dir() and not _is_bare_repo(local):
            shutil.copytree(local, staging, dirs_exist_ok=True, symlinks=True)
        else:
            staging.rmdir()
            _git(user_dir, "clone", source, str(staging))
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return describe(loader.read_extension(target, builtin=False))


def _name_from_source(source: str) -> str:
    tail = source.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    tail = tail.rsplit(":", 1)[-1]  # git@host:user/repo.git
    return tail.removesuffix(".git")


def _is_bare_repo(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists()


def check_updates(
    runtime: Runtime,
    names: list[str] | None = None,
    user_dir: Path = loader.USER_DIR,
    builtin_dir: Path = loader.BUILTIN_DIR,
) -> list[UpdateStatus]:
    """Fetch each git extension's upstream and say whether it has commits this copy lacks."""
    results = []
    for ext in list_extensions(runtime, user_dir, builtin_dir):
        if names is not None and ext.name not in names:
            continue
        results.append(_check(ext))
    return results


def _check(ext: InstalledExtension) -> UpdateStatus:
    if ext.version is None or ext.remote is None:
        return UpdateStatus(ext.name, "unknown", "not a git clone")
    try:
        _git(ext.path, "fetch", "--quiet")
    except ExtensionManageError as error:
        return UpdateStatus(ext.name, "error", str(error))
    upstream = _git_out(ext.path, "rev-parse", "@{u}")
    if upstream is None:
        return UpdateStatus(ext.name, "unknown", "the branch has no upstream")
    behind = _git_out(ext.path, "rev-list", "--count", "HEAD..@{u}") or "0"
    if int(behind):
        return UpdateStatus(ext.name, "behind", f"{behind} new commit(s)")
    return UpdateStatus(ext.name, "latest")


def update(
    runtime: Runtime, name: str, user_dir: Path = loader.USER_DIR, builtin_dir: Path = loader.BUILTIN_DIR
) -> InstalledExtension:
    """Fast-forward a git extension to its upstream (local changes are never overwritten)."""
    ensure_allowed(runtime.args)
    ext = next((e for e in list_extensions(runtime, user_dir, builtin_dir) if e.name == name), None)
    if ext is None:
        raise ValueError(f"unknown extension {name!r}")
    if ext.version is None:
        raise ExtensionManageError(f"extension {name!r} is not a git clone; it cannot be updated")
    _git(ext.path, "pull", "--ff-only", "--quiet")
    return describe(loader.read_extension(ext.path, builtin=ext.builtin))


# ----- git ---------------------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    # Never ask for credentials on a terminal nobody watches.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ExtensionManageError(f"git {args[0]} failed: {error}") from error
    if done.returncode != 0:
        raise ExtensionManageError(f"git {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _git_out(cwd: Path, *args: str) -> str | None:
    """A git query's answer, or None when the folder is not a clone (or git has no answer)."""
    if not (cwd / ".git").exists():
        return None  # a plain folder inside another repository must not report that repository
    try:
        return _git(cwd, *args) or None
    except ExtensionManageError:
        return None

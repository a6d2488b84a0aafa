"""Extension management on temporary folders and local git repositories (never the network): listing,
enable/disable saved for the next start, install by copy or clone, update checks, fast-forward updates,
and the refusal to change anything when the app is reachable from other machines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from modules import cmd_args
from modules.extensions import loader, manage, startup
from modules.options import Options


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def app(tmp_path: Path, *flags: str) -> SimpleNamespace:
    data = tmp_path / "data"
    return SimpleNamespace(
        args=cmd_args.parse(["--data-dir", str(data), *flags]), options=Options(data / "config.json")
    )


@pytest.fixture
def dirs(tmp_path):
    user, builtin = tmp_path / "extensions", tmp_path / "extensions-builtin"
    (builtin / "core-ext" / "scripts").mkdir(parents=True)
    user.mkdir()
    return {"user_dir": user, "builtin_dir": builtin}


@pytest.fixture
def upstream(tmp_path) -> tuple[Path, Path]:
    """A bare repository with one commit, and a working clone used to push more commits into it."""
    bare, work = tmp_path / "remote" / "cool-ext.git", tmp_path / "work"
    bare.parent.mkdir()
    git(tmp_path, "init", "--bare", str(bare))
    git(tmp_path, "clone", str(bare), str(work))
    (work / "scripts").mkdir()
    (work / "scripts" / "cool.py").write_text("VALUE = 1\n")
    git(work, "add", ".")
    git(work, "commit", "-m", "first")
    git(work, "push", "origin", "HEAD:main")
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    return bare, work


def test_local_only_app_may_change_extensions_and_listening_one_may_not(tmp_path):
    assert manage.refusal(app(tmp_path).args) is None
    assert manage.refusal(app(tmp_path, "--server-name", "::1").args) is None
    for flags in (["--listen"], ["--share"], ["--server-name", "192.168.1.5"], ["--server-name", "myhost"]):
        reason = manage.refusal(app(tmp_path, *flags).args)
        assert reason and "--enable-insecure-extension-access" in reason
    assert manage.refusal(app(tmp_path, "--listen", "--enable-insecure-extension-access").args) is None


def test_refused_actions_change_nothing(tmp_path, dirs, upstream):
    listening = app(tmp_path, "--listen")
    with pytest.raises(manage.ExtensionAccessError, match="listens beyond this computer"):
        manage.install(listening, str(upstream[0]), user_dir=dirs["user_dir"])
    with pytest.raises(manage.ExtensionAccessError):
        manage.set_enabled(listening, "core-ext", False, **dirs)
    with pytest.raises(manage.ExtensionAccessError):
        manage.update(listening, "core-ext", **dirs)
    assert list(dirs["user_dir"].iterdir()) == []
    assert manage.disabled_names(listening) == []


def test_install_by_copy_lists_it_and_refuses_a_second_copy(tmp_path, dirs):
    source = tmp_path / "src" / "my-ext"
    (source / "scripts").mkdir(parents=True)
    (source / "scripts" / "a.py").write_text("X = 1\n")
    runtime = app(tmp_path)
    installed = manage.install(runtime, str(source), user_dir=dirs["user_dir"])
    assert installed.name == "my-ext" and installed.path == dirs["user_dir"] / "my-ext"
    assert (installed.path / "scripts" / "a.py").read_text() == "X = 1\n"
    assert installed.version is None and installed.remote is None
    listed = {e.name: e for e in manage.list_extensions(runtime, **dirs)}
    assert listed["my-ext"].enabled and not listed["my-ext"].builtin and listed["core-ext"].builtin
    with pytest.raises(manage.ExtensionManageError, match="already exists"):
        manage.install(runtime, str(source), user_dir=dirs["user_dir"])
    assert [p.name for p in dirs["user_dir"].iterdir()] == ["my-ext"]  # no staging folder left behind


def test_failed_clone_leaves_nothing(tmp_path, dirs):
    with pytest.raises(manage.ExtensionManageError, match="git clone failed"):
        manage.install(app(tmp_path), str(tmp_path / "nowhere" / "x.git"), user_dir=dirs["user_dir"])
    assert list(dirs["user_dir"].iterdir()) == []


def test_clone_check_and_fast_forward_update(tmp_path, dirs, upstream):
    bare, work = upstream
    runtime = app(tmp_path)
    installed = manage.install(runtime, str(bare), user_dir=dirs["user_dir"])
    assert installed.name == "cool-ext" and installed.remote == str(bare) and installed.branch == "main"
    assert installed.version == git(work, "rev-parse", "--short", "HEAD")
    assert [(s.name, s.state) for s in manage.check_updates(runtime, ["cool-ext", "core-ext"], **dirs)] == [
        ("core-ext", "unknown"),
        ("cool-ext", "latest"),
    ]
    (work / "scripts" / "cool.py").write_text("VALUE = 2\n")
    git(work, "commit", "-am", "second")
    git(work, "push", "origin", "HEAD:main")
    status = manage.check_updates(runtime, ["cool-ext"], **dirs)[0]
    assert status.state == "behind" and "1 new commit" in status.message
    updated = manage.update(runtime, "cool-ext", **dirs)
    assert updated.version == git(work, "rev-parse", "--short", "HEAD") != installed.version
    assert (updated.path / "scripts" / "cool.py").read_text() == "VALUE = 2\n"
    assert manage.check_updates(runtime, ["cool-ext"], **dirs)[0].state == "latest"
    with pytest.raises(manage.ExtensionManageError, match="not a git clone"):
        manage.update(runtime, "core-ext", **dirs)


def test_disabling_is_saved_and_read_at_the_next_start(tmp_path, dirs):
    runtime = app(tmp_path)
    manage.set_enabled(runtime, "core-ext", False, **dirs)
    config = json.loads((tmp_path / "data" / "config.json").read_text())
    assert config["disabled_extensions"] == ["core-ext"]
    disabled = startup.disabled_extensions(tmp_path / "data" / "config.json")
    assert disabled == {"core-ext"}
    assert not loader.discover(disabled, dirs=((dirs["builtin_dir"], True),))[0].enabled
    assert not {e.name: e for e in manage.list_extensions(runtime, **dirs)}["core-ext"].enabled
    manage.set_enabled(runtime, "core-ext", True, **dirs)
    assert manage.disabled_names(runtime) == []
    with pytest.raises(ValueError, match="unknown extension"):
        manage.set_enabled(runtime, "nope", False, **dirs)

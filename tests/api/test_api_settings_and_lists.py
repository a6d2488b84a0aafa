"""GET/POST /options, /cmd-flags and the listing and refresh endpoints, in A1111 1.10's shapes."""

from __future__ import annotations

import json

import safetensors.torch
import torch

API = "/sdapi/v1"


def test_get_options_lists_every_setting_with_its_value(client, runtime):
    runtime.options.set("eta_noise_seed_delta", 31337)
    options = client.get(f"{API}/options").json()
    assert set(runtime.options.definitions) <= set(options)
    assert options["eta_noise_seed_delta"] == 31337
    assert options["samples_format"] == "png"


def test_set_options_converts_types_saves_and_returns_null(client, runtime):
    response = client.post(f"{API}/options", json={"CLIP_stop_at_last_layers": "2", "samples_format": "jpg"})
    assert response.status_code == 200 and response.json() is None
    assert runtime.options.get("CLIP_stop_at_last_layers") == 2
    saved = json.loads(runtime.paths.config_file.read_text())
    assert saved["samples_format"] == "jpg"
    assert client.get(f"{API}/options").json()["CLIP_stop_at_last_layers"] == 2


def test_set_options_rejects_unknown_keys_and_bad_values_changing_nothing(client, runtime):
    response = client.post(f"{API}/options", json={"samples_format": "jpg", "no_such_setting": 1})
    assert response.status_code == 422 and "no_such_setting" in response.json()["detail"]
    response = client.post(f"{API}/options", json={"samples_format": "jpg", "eta_noise_seed_delta": "lots"})
    assert response.status_code == 422 and "eta_noise_seed_delta" in response.json()["detail"]
    assert runtime.options.get("samples_format") == "png"


def test_output_folders_cannot_be_set_through_the_api(client, runtime):
    response = client.post(
        f"{API}/options", json={"outdir_txt2img_samples": "/etc", "CLIP_stop_at_last_layers": 3}
    )
    assert response.status_code == 200
    assert runtime.options.get("outdir_txt2img_samples") == ""
    assert runtime.options.get("CLIP_stop_at_last_layers") == 3


def test_selecting_a_checkpoint_loads_it(client, runtime, checkpoint):
    response = client.post(f"{API}/options", json={"sd_model_checkpoint": "tiny-test"})
    assert response.status_code == 200, response.text
    title = runtime.models.checkpoints()[0].title
    assert runtime.options.get("sd_model_checkpoint") == title
    assert [b.path for b in runtime.models.loaded()] == [checkpoint]
    response = client.post(f"{API}/options", json={"sd_model_checkpoint": "nope.safetensors"})
    assert response.status_code == 404 and "nope.safetensors" in response.json()["detail"]


def test_current_checkpoint_is_named_even_when_never_chosen(client, runtime, checkpoint):
    runtime.models.get("tiny-test")
    assert client.get(f"{API}/options").json()["sd_model_checkpoint"] == runtime.models.checkpoints()[0].title


def test_sd_models_and_refresh(client, runtime, checkpoint):
    models = client.get(f"{API}/sd-models").json()
    assert len(models) == 1
    item = models[0]
    assert set(item) == {"title", "model_name", "hash", "sha256", "filename", "config"}
    assert item["model_name"] == "tiny-test" and item["filename"] == str(checkpoint)
    copy = checkpoint.with_name("second.safetensors")
    copy.write_bytes(checkpoint.read_bytes())
    assert len(client.get(f"{API}/sd-models").json()) == 1  # cached until refreshed
    assert client.post(f"{API}/refresh-checkpoints").status_code == 200
    assert {m["model_name"] for m in client.get(f"{API}/sd-models").json()} == {"tiny-test", "second"}


def test_unload_and_reload_checkpoint(client, runtime, checkpoint):
    runtime.model_loader = None
    runtime.options.set("sd_model_checkpoint", "tiny-test")
    assert client.post(f"{API}/reload-checkpoint").json() == {}
    assert len(runtime.models.loaded()) == 1
    assert client.post(f"{API}/unload-checkpoint").json() == {}
    assert runtime.models.loaded() == []


def test_samplers_and_schedulers(client, runtime):
    samplers = client.get(f"{API}/samplers").json()
    assert [s["name"] for s in samplers] == list(runtime.sampling_registry.samplers)
    by_name = {s["name"]: s for s in samplers}
    assert "k_euler_a" in by_name["Euler a"]["aliases"]
    assert by_name["DPM++ 2M"]["options"]["scheduler"] == "karras"
    assert by_name["DPM++ SDE"]["options"]["second_order"] is True
    schedulers = client.get(f"{API}/schedulers").json()
    assert schedulers[0] == {
        "name": "automatic",
        "label": "Automatic",
        "aliases": None,
        "default_rho": -1.0,
        "need_inner_model": False,
    }
    karras = next(s for s in schedulers if s["name"] == "karras")
    assert karras["label"] == "Karras" and karras["default_rho"] == 7.0


def test_upscalers_and_latent_modes(client):
    names = [u["name"] for u in client.get(f"{API}/upscalers").json()]
    assert names == ["None", "Lanczos", "Nearest"]
    modes = [m["name"] for m in client.get(f"{API}/latent-upscale-modes").json()]
    assert modes[0] == "Latent" and "Latent (nearest-exact)" in modes


def test_vaes_loras_and_styles_come_from_their_folders(client, runtime):
    runtime.paths.vae_dir.mkdir(parents=True)
    (runtime.paths.vae_dir / "my.vae.safetensors").write_bytes(b"x")
    assert client.get(f"{API}/sd-vae").json() == [
        {"model_name": "my.vae.safetensors", "filename": str(runtime.paths.vae_dir / "my.vae.safetensors")}
    ]
    runtime.paths.styles_file.write_text("name,prompt,negative_prompt\nfancy,{prompt} golden,ugly\n")
    runtime.styles.load()
    assert client.get(f"{API}/prompt-styles").json() == [
        {"name": "fancy", "prompt": "{prompt} golden", "negative_prompt": "ugly"}
    ]


def test_loras_come_from_the_lora_extension(tmp_path, tiny_bundle):
    from fastapi.testclient import TestClient

    from modules import cmd_args
    from modules.api.server import create_app
    from modules.extensions import loader
    from modules.extensions.registry import ExtensionRegistry
    from modules.runtime import Runtime

    registry = ExtensionRegistry()
    lora_only = [e for e in loader.discover(set()) if e.name == "lora"]
    loader.load_scripts(lora_only, registry)
    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]), registry)
    runtime.model_loader = lambda: tiny_bundle
    runtime.paths.lora_dir.mkdir(parents=True)
    metadata = {"ss_output_name": "pretty name", "ss_tag_frequency": json.dumps({"a": {"b": 1}})}
    lora = runtime.paths.lora_dir / "file_name.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(1)}, str(lora), metadata=metadata)
    with TestClient(create_app(runtime)) as client:
        assert client.post(f"{API}/refresh-loras").status_code == 200
        listed = [item for item in client.get(f"{API}/loras").json() if item["path"] == str(lora)]
    assert listed == [
        {
            "name": "file_name",
            "alias": "pretty name",
            "path": str(lora),
            "metadata": {"ss_output_name": "pretty name", "ss_tag_frequency": {"a": {"b": 1}}},
        }
    ]


def test_embeddings_loaded(client, runtime):
    runtime.paths.embeddings_dir.mkdir(parents=True)
    torch.save(
        {"string_to_param": {"*": torch.zeros(3, 768)}, "step": 500}, runtime.paths.embeddings_dir / "emb.pt"
    )
    assert "emb" not in client.get(f"{API}/embeddings").json()["loaded"]  # found by a refresh
    assert client.post(f"{API}/refresh-embeddings").status_code == 200
    body = client.get(f"{API}/embeddings").json()
    assert body["loaded"]["emb"] == {
        "step": 500,
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
        "shape": 768,
        "vectors": 3,
    }
    assert body["skipped"] == {}


def test_cmd_flags_scripts_extensions_memory(client, runtime):
    flags = client.get(f"{API}/cmd-flags").json()
    assert flags["data_dir"] == str(runtime.paths.data_dir) and flags["nowebui"] is False
    assert client.get(f"{API}/extensions").json() == []  # built-ins have no git remote: not listed
    memory = client.get(f"{API}/memory").json()
    assert memory["ram"]["total"] > memory["ram"]["used"] > 0
    assert "error" in memory["cuda"] or memory["cuda"]["system"]["total"] > 0
    for path in ("refresh-vae", "refresh-loras"):
        assert client.post(f"{API}/{path}").status_code == 200


def test_extensions_lists_git_clones_with_a1111_types(client, runtime, tmp_path, monkeypatch):
    import subprocess

    from modules.extensions import loader

    user = tmp_path / "extensions"
    clone, plain = user / "sd-clone", user / "plain-folder"
    for folder in (clone, plain):
        (folder / "scripts").mkdir(parents=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(clone)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://example.invalid/sd-clone.git"], check=True)
    real = loader.discover
    monkeypatch.setattr(
        loader, "discover", lambda *a, **k: real(*a, **k, dirs=((loader.BUILTIN_DIR, True), (user, False)))
    )
    (item,) = client.get(f"{API}/extensions").json()
    assert item["name"] == "sd-clone" and item["remote"] == "https://example.invalid/sd-clone.git"
    assert item["branch"] == "main" and item["enabled"] is True
    assert len(item["commit_hash"]) >= 7 and item["version"] == item["commit_hash"]
    assert isinstance(item["commit_date"], int) and item["commit_date"] > 0

"""Client mistakes and hostile bodies get a 4xx naming the place, never a 500: bodies that are not strict
JSON, numbers with no range, images that declare more pixels than the limit, a broken config.json."""

from __future__ import annotations

import base64
import io
import json
import warnings

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import BaseModel

from modules.api import models as m
from modules.api.server import create_app
from modules.options import Options
from tests.api.helpers import b64_png, gradient

SMALL = {"prompt": "a", "steps": 1, "width": 64, "height": 64}


@pytest.fixture
def lenient(runtime):
    """A client that returns a 500 as a response (so a test can assert there is none)."""
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


def post_raw(client, path: str, body: bytes):
    return client.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "place"),
    [
        (b'{"prompt":"a","cfg_scale":NaN}', "body.cfg_scale"),
        (b'{"prompt":"a","cfg_scale":Infinity}', "body.cfg_scale"),
        (b'{"prompt":"a","cfg_scale":-Infinity}', "body.cfg_scale"),
        (b'{"prompt":"a","denoising_strength":1e400}', "body.denoising_strength"),
        (b'{"prompt":"a","script_args":[1, NaN]}', "body.script_args[1]"),
        (b'{"prompt":"a","alwayson_scripts":{"x":{"args":[Infinity]}}}', "body.alwayson_scripts.x.args[0]"),
        (b'{"prompt":"a\\ud800b"}', "body.prompt"),
        (b'{"prompt":"a","styles":["\\udfff"]}', "body.styles[0]"),
        (b'{"prompt":"a","override_settings":{"\\udc00":1}}', "body.override_settings key"),
    ],
)
def test_non_strict_json_is_refused_naming_the_place(lenient, body, place):
    response = post_raw(lenient, "/sdapi/v1/txt2img", body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(place + ":")


def test_settings_bodies_are_held_to_strict_json_too(lenient):
    before = lenient.get("/sdapi/v1/options").json()["samples_filename_pattern"]
    response = post_raw(lenient, "/sdapi/v1/options", b'{"samples_filename_pattern":"\\ud800"}')
    assert response.status_code == 422 and "lone surrogate" in response.json()["detail"]
    response = post_raw(lenient, "/sdapi/v1/options", b'{"s_noise":NaN}')
    assert response.status_code == 422
    assert lenient.get("/sdapi/v1/options").json()["samples_filename_pattern"] == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "\xff\xfe"}',  # not UTF-8
        b'{"prompt":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nested past the parser's recursion
        b'{"prompt":"a","seed":' + b"9" * 5000 + b"}",  # past Python's integer-parsing digit limit
        b'{"prompt": ',  # truncated
        b"[1, 2]",  # not an object
    ],
)
def test_unparseable_bodies_are_client_errors(lenient, body):
    response = post_raw(lenient, "/sdapi/v1/txt2img", body)
    assert 400 <= response.status_code < 500, response.text


def test_a_valid_request_still_passes_the_strict_check(client):
    response = client.post("/sdapi/v1/txt2img", json={**SMALL, "prompt": "naïve café ✓ 🙂"})
    assert response.status_code == 200
    assert json.loads(response.json()["info"])["prompt"] == "naïve café ✓ 🙂"


def _request_models() -> list[type[BaseModel]]:
    return [
        m.StableDiffusionProcessingTxt2Img,
        m.StableDiffusionProcessingImg2Img,
        m.ExtrasSingleImageRequest,
        m.ExtrasBatchImagesRequest,
        m.PNGInfoRequest,
        m.InterrogateRequest,
    ]


@pytest.mark.parametrize("model", _request_models(), ids=lambda model: model.__name__)
def test_every_numeric_request_field_has_a_range(model):
    unbounded = []
    for name, info in model.model_fields.items():
        annotation = str(info.annotation)
        if "list" in annotation or "dict" in annotation or "bool" in annotation:
            continue
        if "int" not in annotation and "float" not in annotation:
            continue
        kinds = {type(item).__name__ for item in info.metadata}
        if not ({"Ge", "Gt"} & kinds and {"Le", "Lt"} & kinds):
            unbounded.append(name)
    assert unbounded == []  # (NaN and infinities never reach a field: the strict body check refuses them)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed_resize_from_w", 1_000_000),
        ("eta", 1e30),
        ("s_churn", 1e30),
        ("s_noise", 1e30),
        ("subseed_strength", 2),
        ("n_iter", 10**9),
        ("batch_size", 10**6),
        ("firstphase_width", 10**6),
        ("s_min_uncond", 100),
    ],
)
def test_out_of_range_numbers_are_refused_naming_field_and_range(lenient, field, value):
    response = lenient.post("/sdapi/v1/txt2img", json={**SMALL, field: value})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field] and "less than or equal to" in error["msg"]


def _bomb_png(side: int) -> str:
    """A PNG of a few kB that declares side x side pixels (of zeros)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(lenient, runtime, monkeypatch):
    bomb = _bomb_png(12_000)
    assert len(bomb) < 200_000
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self.size))
    for path, body in [
        ("/sdapi/v1/img2img", {**SMALL, "init_images": [b64_png(gradient()), bomb]}),
        ("/sdapi/v1/img2img", {**SMALL, "init_images": [b64_png(gradient())], "mask": bomb}),
        ("/sdapi/v1/extra-single-image", {"image": bomb}),
        ("/sdapi/v1/extra-batch-images", {"imageList": [{"data": bomb, "name": "x.png"}]}),
        ("/sdapi/v1/png-info", {"image": bomb}),
        ("/sdapi/v1/interrogate", {"image": bomb}),
    ]:
        loads.clear()
        response = lenient.post(path, json=body)
        assert response.status_code == 413, (path, response.text)
        detail = response.json()["detail"]
        assert "144000000 pixels" in detail or "12000x12000 (144.0 megapixels)" in detail
        assert "at most 50 megapixels" in detail and "upload_max_megapixels" in detail
        assert (12_000, 12_000) not in loads  # nothing of it was decoded


def test_the_pixel_limit_follows_its_setting_in_the_api_and_in_pil(lenient):
    picture = b64_png(gradient(128, 128))  # 16384 pixels
    assert lenient.post("/sdapi/v1/png-info", json={"image": picture}).status_code == 200
    assert lenient.post("/sdapi/v1/options", json={"upload_max_megapixels": 0.01}).status_code == 200
    response = lenient.post("/sdapi/v1/png-info", json={"image": picture})
    assert response.status_code == 413 and "16384 pixels" in response.json()["detail"]
    # The UI's uploads are opened by PIL itself (Gradio): the same limit holds there, as an error.
    with pytest.raises(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(base64.b64decode(picture)))
    assert lenient.post("/sdapi/v1/options", json={"upload_max_megapixels": 50}).status_code == 200
    with warnings.catch_warnings():
        Image.open(io.BytesIO(base64.b64decode(picture))).load()


def test_broken_images_are_400s_that_say_why(lenient):
    for data in ["@@@", base64.b64encode(b"not an image").decode(), b64_png(gradient())[:200]]:
        response = lenient.post("/sdapi/v1/png-info", json={"image": data})
        assert response.status_code == 400
        assert response.json()["detail"].startswith("image: ") and "_io." not in response.json()["detail"]


# --- config.json at start-up ------------------------------------------------------------------------


def test_an_unreadable_config_is_set_aside_and_the_app_starts_on_defaults(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"samples_format": "png", trunc')
    options = Options(path)
    assert options.get("samples_format") == "png"
    assert (tmp_path / "config.json.bad").read_bytes() == b'{"samples_format": "png", trunc'
    assert "kept as" in capsys.readouterr().out
    options.set("samples_format", "jpg")
    assert json.loads(path.read_text()) == {"samples_format": "jpg"}
    assert (tmp_path / "config.json.bad").read_bytes() == b'{"samples_format": "png", trunc'


def test_bad_values_are_reset_and_the_file_as_it_was_is_kept(tmp_path):
    path = tmp_path / "config.json"
    original = json.dumps(
        {"samples_format": "exe", "CLIP_stop_at_last_layers": 50, "eta_noise_seed_delta": 7}
    )
    path.write_text(original)
    (tmp_path / "config.json.bad").write_text("an older copy")
    options = Options(path)
    assert options.get("samples_format") == "png" and options.get("CLIP_stop_at_last_layers") == 1
    assert options.get("eta_noise_seed_delta") == 7
    assert (tmp_path / "config.json.bad").read_text() == "an older copy"  # never replaced
    assert (tmp_path / "config.json.bad-1").read_text() == original
    assert not (tmp_path / "config.json.bad-2").exists()  # one copy per start, however many bad keys


def test_a_config_that_is_not_an_object_is_set_aside(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    assert Options(path).get("samples_save") is True
    assert (tmp_path / "config.json.bad").read_text() == "[1, 2]"


# --- what the server tells and warns ----------------------------------------------------------------


def test_cmd_flags_redact_credentials_but_keep_their_keys(tmp_path, tiny_bundle):
    from modules import cmd_args
    from modules.runtime import Runtime

    args = ["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]
    runtime = Runtime(cmd_args.parse([*args, "--api-auth", "alice:s3cret", "--gradio-auth", "bob:pw"]))
    runtime.model_loader = lambda: tiny_bundle
    with TestClient(create_app(runtime, [("alice", "s3cret")])) as client:
        flags = client.get("/sdapi/v1/cmd-flags", auth=("alice", "s3cret")).json()
    assert flags["api_auth"] == "<redacted>" and flags["gradio_auth"] == "<redacted>"
    assert "s3cret" not in json.dumps(flags) and "pw" not in json.dumps(flags)
    assert flags["data_dir"] == str(tmp_path)


@pytest.mark.parametrize(
    ("flags", "auth", "warned"),
    [
        (["--listen"], None, True),
        (["--server-name", "192.168.1.5"], None, True),
        (["--share"], None, True),
        (["--listen"], [("a", "b")], False),
        ([], None, False),
        (["--server-name", "127.0.0.2"], None, False),
    ],
)
def test_exposed_servers_without_credentials_are_warned_about(flags, auth, warned, tmp_path, capsys):
    from modules import cmd_args
    from webui import warn_if_exposed

    warn_if_exposed(cmd_args.parse(["--data-dir", str(tmp_path), *flags]), auth)
    assert ("WARNING: listening on" in capsys.readouterr().out) is warned


@pytest.mark.parametrize(
    ("flags", "warned"),
    [
        (["--listen", "--api", "--gradio-auth", "a:b"], True),
        (["--listen", "--api", "--gradio-auth", "a:b", "--api-auth", "c:d"], False),
        (["--listen", "--gradio-auth", "a:b"], False),  # no API served
        (["--api", "--gradio-auth", "a:b"], False),  # localhost only
    ],
)
def test_an_exposed_api_without_its_own_credentials_is_warned_about(flags, warned, tmp_path, capsys):
    # --gradio-auth guards only the UI: A1111's /sdapi/v1 takes --api-auth alone.
    from modules import cmd_args
    from webui import warn_if_exposed

    warn_if_exposed(cmd_args.parse(["--data-dir", str(tmp_path), *flags]), [("a", "b")])
    assert ("WARNING: the /sdapi/v1 API" in capsys.readouterr().out) is warned


def test_failed_logins_are_rate_limited_per_client():
    from fastapi import Depends, FastAPI

    from modules.api.server import LoginLimiter, basic_auth

    now = [1000.0]
    limiter = LoginLimiter(failures=3, window=60, clock=lambda: now[0])
    app = FastAPI()
    app.add_api_route("/x", lambda: {"ok": True}, dependencies=[Depends(basic_auth([("u", "pw")], limiter))])
    with TestClient(app) as client:
        assert client.get("/x", auth=("u", "pw")).status_code == 200
        assert [client.get("/x", auth=("u", f"guess{i}")).status_code for i in range(3)] == [401] * 3
        refused = client.get("/x", auth=("u", "pw"))  # even the right password, until the window passes
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 61
        now[0] += 30
        assert int(client.get("/x", auth=("u", "pw")).headers["Retry-After"]) == 31
        limiter.failed("another-client")  # other clients are not affected
        assert limiter.wait("another-client") == 0
        now[0] += 31
        assert client.get("/x", auth=("u", "pw")).status_code == 200
        assert client.get("/x", auth=("u", "nope")).status_code == 401  # a success cleared the count


def test_the_ui_login_is_rate_limited_per_user():
    from modules.api.server import LoginLimiter, ui_login

    now = [0.0]
    login = ui_login([("u", "pw"), ("v", "x")], LoginLimiter(failures=2, window=10, clock=lambda: now[0]))
    assert login("u", "pw") and not login("u", "bad") and not login("u", "bad")
    assert not login("u", "pw")  # locked for the window
    assert login("v", "x")  # another user is not
    now[0] = 10.5
    assert login("u", "pw")

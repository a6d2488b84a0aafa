"""A bounded property-based fuzz of the API's own OpenAPI schema: bodies drawn from each route's request
schema (values in range, out of range, of the wrong type, missing or null) never get a 5xx.

Generation cost is kept small by pinning what makes a job long (steps, size, batch, hires) to tiny values
in half of the draws; the rest of every body is drawn freely. Derandomized in CI (tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules.api.server import create_app
from tests.api.helpers import b64_png, gradient

ROUTES = ["/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/extra-single-image", "/sdapi/v1/png-info"]
CHEAP = {"steps": 1, "width": 64, "height": 64, "batch_size": 1, "n_iter": 1, "enable_hr": False}
IMAGE = b64_png(gradient(16, 16))

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _schema_value(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value for one property: usually of its type (in or out of its range), sometimes junk."""
    options = prop.get("anyOf", [prop])
    kinds = [option.get("type") for option in options]
    low, high = prop.get("minimum"), prop.get("maximum")
    typed: list[st.SearchStrategy[Any]] = []
    if "integer" in kinds:
        lo, hi = int(low if low is not None else -1000), int(high if high is not None else 1000)
        typed += [st.integers(lo, hi), st.integers(hi, hi + 10**6), st.integers(lo - 10**6, lo)]
    if "number" in kinds:
        lo, hi = float(low if low is not None else -1e3), float(high if high is not None else 1e3)
        typed += [st.floats(lo, hi), st.floats(hi, hi * 10 + 1e6), st.floats(-1e308, 1e308)]
    if "string" in kinds:
        typed.append(st.sampled_from(["", "Euler", "None", "Lanczos", IMAGE, "@@@", "../x", "\x00"]))
        typed.append(st.text(max_size=30))
    if "boolean" in kinds:
        typed.append(st.booleans())
    if "array" in kinds:
        typed.append(st.lists(st.one_of(st.just(IMAGE), st.text(max_size=5), st.integers()), max_size=2))
    if "object" in kinds:
        typed.append(
            st.dictionaries(
                st.sampled_from(["eta", "samples_format", "x", "CLIP_stop_at_last_layers"]), junk, max_size=2
            )
        )
    return st.one_of(*typed, junk) if typed else junk


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, tiny_bundle):
    from modules import cmd_args
    from modules.runtime import Runtime

    data = tmp_path_factory.mktemp("fuzz")
    runtime = Runtime(cmd_args.parse(["--data-dir", str(data), "--device", "cpu", "--no-bundled-models"]))
    runtime.model_loader = lambda: tiny_bundle
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        schema = client.get("/openapi.json").json()
        yield client, schema


@st.composite
def requests_(draw, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    route = draw(st.sampled_from(ROUTES))
    ref = schema["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    properties = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    names = draw(st.lists(st.sampled_from(sorted(properties)), max_size=8, unique=True))
    body = {name: draw(_schema_value(properties[name])) for name in names}
    if route.endswith("img2img") and draw(st.booleans()):
        body.setdefault("init_images", [IMAGE])
    if route.endswith(("txt2img", "img2img")) and draw(st.booleans()):
        body.update(CHEAP)  # a valid-sized job, so the draws reach generation too
    elif route.endswith(("txt2img", "img2img")):
        body.setdefault("steps", 1)  # drawn bodies that pass validation must stay cheap
        body.update(
            {key: CHEAP[key] for key in ("width", "height", "batch_size", "n_iter") if key not in body}
        )
        for key in (
            "steps",
            "width",
            "height",
            "batch_size",
            "n_iter",
            "hr_scale",
            "hr_resize_x",
            "hr_resize_y",
        ):
            if isinstance(body.get(key), int | float) and not isinstance(body[key], bool) and 0 < body[key]:
                body[key] = min(body[key], CHEAP.get(key, 1) if key != "hr_scale" else 1)
    return route, body


@pytest.mark.slow
def test_no_drawn_body_gets_a_5xx(fuzz_client):
    client, schema = fuzz_client
    statuses: dict[int, int] = {}

    @settings(max_examples=80, suppress_health_check=list(HealthCheck), deadline=None)
    @given(requests_(schema))
    def check(request):
        route, body = request
        response = client.post(route, json=body)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (route, body, response.text[:300])

    check()
    print("statuses", statuses)
    assert any(status == 200 for status in statuses), statuses  # the draws reach real work too

"""Scripts through the API: /scripts and /script-info list them, script_name and alwayson_scripts reach
the job, and names the tab does not have are 422 as in A1111."""

from __future__ import annotations

from modules.extensions.api import AlwaysVisible, Script

API = "/sdapi/v1"
SMALL = {"prompt": "a dot", "steps": 1, "width": 64, "height": 64, "seed": 1}


class Selectable(Script):
    def title(self) -> str:
        return "My Grid"

    def show(self, is_img2img: bool) -> bool:
        return not is_img2img


class Recorder(Script):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def title(self) -> str:
        return "Recorder"

    def show(self, is_img2img: bool):
        return AlwaysVisible

    def process(self, p, *args) -> None:
        self.seen.append(args)


def install(runtime) -> Recorder:
    recorder = Recorder()
    runtime.extensions.scripts.extend([Selectable(), recorder])
    return recorder


def test_scripts_are_listed_by_lower_cased_title(client, runtime):
    install(runtime)
    assert client.get(f"{API}/scripts").json() == {
        "txt2img": ["my grid", "recorder"],
        "img2img": ["recorder"],
    }
    info = client.get(f"{API}/script-info").json()
    assert {"name": "recorder", "is_alwayson": True, "is_img2img": True, "args": []} in info
    assert {"name": "my grid", "is_alwayson": False, "is_img2img": False, "args": []} in info


def test_alwayson_script_args_reach_the_script(client, runtime):
    recorder = install(runtime)
    response = client.post(
        f"{API}/txt2img", json={**SMALL, "alwayson_scripts": {"recorder": {"args": [3, "x"]}}}
    )
    assert response.status_code == 200, response.text
    assert recorder.seen == [(3, "x")]


def test_unknown_scripts_are_422(client, runtime):
    install(runtime)
    response = client.post(f"{API}/txt2img", json={**SMALL, "script_name": "no such script"})
    assert response.status_code == 422 and "script_name" in response.json()["detail"]
    response = client.post(f"{API}/txt2img", json={**SMALL, "alwayson_scripts": {"My Grid": {"args": []}}})
    assert response.status_code == 422 and "alwayson_scripts" in response.json()["detail"]
    assert not runtime.queue.running() and not runtime.queue.waiting()

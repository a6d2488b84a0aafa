"""Two people on one server (--gradio-auth), each in their own browser: the waiting one sees their place
in the queue, and their Interrupt stops their own task only, never the other person's running one."""

from __future__ import annotations

import re

import pytest

from tests.ui.browser import small_job, type_prompt, wait_for_result
from tests.ui.conftest import start_server, stop_server, wait_for_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def two_user_server(tmp_path, free_port):
    proc = start_server(["--gradio-auth", "alice:secret-a,bob:secret-b"], tmp_path, free_port)
    url = f"http://127.0.0.1:{free_port}/"
    try:
        wait_for_http(url, proc)
        yield url
    finally:
        stop_server(proc)


def log_in(browser, url: str, user: str, password: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.locator("input[type=text], input:not([type])").first.fill(user)
    page.locator("input[type=password]").first.fill(password)
    page.locator("button").filter(has_text=re.compile("login", re.I)).first.click()
    page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
    return context, page


def step_of(page) -> int:
    match = re.search(r"step (\d+)/", page.inner_text("#txt2img_progress"))
    return int(match.group(1)) if match else -1


def test_interrupt_of_one_user_leaves_the_other_users_job_running(browser, two_user_server):
    alice_context, alice = log_in(browser, two_user_server, "alice", "secret-a")
    bob_context, bob = log_in(browser, two_user_server, "bob", "secret-b")
    try:
        type_prompt(alice, "txt2img", "alice's long run")
        small_job(alice, steps=150, size=128, seed=21)
        alice.click("#txt2img_generate")
        alice.wait_for_function(
            "/step [1-9]\\d*\\/150/.test(document.querySelector('#txt2img_progress')?.innerText || '')",
            timeout=60_000,
        )
        type_prompt(bob, "txt2img", "bob's run")
        small_job(bob, steps=3, size=64, seed=22)
        bob.click("#txt2img_generate")
        # Bob waits and is told where he stands, not "another tab".
        bob.wait_for_function(
            "(document.querySelector('#txt2img_progress')?.innerText || '')"
            ".includes('Waiting in the queue: 1 of 1')",
            timeout=30_000,
        )
        bob.click("#txt2img_interrupt")
        # Bob's waiting task left the queue: his page is idle again, with nothing generated.
        bob.wait_for_selector("#txt2img_generate", state="visible", timeout=30_000)
        assert "Seed: 22" not in bob.inner_text("#html_info_txt2img")
        # Alice's job goes on: the bar still moves.
        before = step_of(alice)
        alice.wait_for_function(
            f"(() => {{ const m = /step (\\d+)\\//.exec(document.querySelector('#txt2img_progress')"
            f"?.innerText || ''); return m && Number(m[1]) > {before}; }})()",
            timeout=60_000,
        )
        assert alice.locator("#txt2img_interrupt").is_visible()
        alice.click("#txt2img_interrupt")
        info = wait_for_result(alice, "txt2img", "Seed: 21,", timeout=60_000)
        assert info.startswith("alice's long run")
    finally:
        alice_context.close()
        bob_context.close()

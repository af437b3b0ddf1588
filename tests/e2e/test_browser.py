"""The Prefect UI in a real browser, as a librarian uses it: Debian's chromium driven by playwright
(executable_path=/usr/bin/chromium; no `playwright install`), against the library the manual's
one-machine script starts (deployments/one-machine.sh: a real `prefect server` with authentication,
the work pool, `deployments/deploy.py`, a worker). It opens the waive deployment's run form and checks
the fields, their order and the code dropdowns; starts a dry run and reads its report; starts a real
run, approves it through the Resume form and sees the named final state and the report.

Screenshots (1280x800) go to build/browser-shots/ (BROWSER_SHOTS) and are kept after a failure. Four of
them are also the manual's pictures of the UI (docs/images/, embedded by docs/operations/ui.md), rewritten
under the same names on every run so the manual shows the UI as it is now."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.builders import add_user
from tests.e2e.test_deployments import free_port, start, stop, wait_for

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("BROWSER_SHOTS", PROJECT / "build" / "browser-shots"))
DOC_IMAGES = PROJECT / "docs" / "images"
CREDENTIAL = "librarian:browser-test-secret"
WAIVE = "bulk-fine-waiving/ad-hoc"
# The waive form as a librarian reads it: what to select, the limits, the reason, the technical ones last.
WAIVE_FIELDS = ["User groups (Optional)", "Fine types (Optional)", "Created from (Optional)", "Created to (Optional)",
                "Leave out users with overdue loans", "Fine threshold", "Waive reason", "Comment",
                "Run date (Optional)", "Dry run", "Require approval", "Batch size", "Approval timeout (seconds)"]
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def api(base: str, path: str, body: dict | None = None, *, auth: str | None = CREDENTIAL):
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or "null")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The manual's one-machine setup around a small library: 3 users with small fines, 1 above the
    threshold."""
    if not Path(CHROMIUM).exists():
        # Like PostgreSQL: in CI a missing browser fails the run instead of passing it by skipping.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is required in CI but missing (.ci/run installs it)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does it)")
    from tasks.db.engine import dispose_engines, get_engine
    from tasks.library.init_db import init_db

    home = tmp_path_factory.mktemp("prefect-browser")
    db_url = f"sqlite:///{home}/library.db"
    engine = get_engine(db_url)
    init_db(engine)
    for name in ("ada", "bo", "cy"):
        add_user(engine, name, fees_owed=["2.50", "1.25"])
    add_user(engine, "big", fees_owed=["80.00"])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "DATABASE_URL"}
    env.update(PREFECT_HOME=str(home / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_PORT=str(port), PREFECT_API_AUTH_STRING=CREDENTIAL, DATABASE_URL=db_url,
               PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1",
               LIBRARY_APPROVERS="Kari Nordmann", VENV=str(Path(sys.executable).parent.parent))
    log = home / "one-machine.log"
    process = start([str(PROJECT / "deployments" / "one-machine.sh")], env, log)
    base = f"http://127.0.0.1:{port}/api"
    try:
        def deployed_and_worker_online():
            try:
                pools = api(base, "/work_pools/library-jobs/workers/filter", {})
                return api(base, f"/deployments/name/{WAIVE}") if any(w["status"] == "ONLINE" for w in pools) else None
            except (OSError, urllib.error.HTTPError):
                return None

        deployment = wait_for(deployed_and_worker_online, 300, "the one-machine setup", [(process, log)])
        yield type("Library", (), dict(api=base, ui=f"http://127.0.0.1:{port}", deployment=deployment,
                                       engine=engine, log=log))
    finally:
        stop(process)
        dispose_engines()
        assert CREDENTIAL.split(":")[1] not in log.read_text(), "the credential must not be logged"


@pytest.fixture
def page(library, request):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
        pg = context.new_page()
        pg.set_default_timeout(90_000)  # a busy CI machine draws the UI slowly
        try:
            yield pg
        finally:  # the page as it was when the test ended: kept, for a failure's sake
            pg.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"), full_page=True)
            context.close()
            browser.close()


def snap(pg, name: str, *, docs: bool = False) -> None:
    """A screenshot of the window; with `docs`, also the manual's picture docs/images/NAME.png."""
    png = pg.screenshot(path=str(SHOTS / f"{name}.png"))
    if docs:  # replaced whole, so a build of the manual running meanwhile never copies half a picture
        partial = DOC_IMAGES / f".{name}.png.partial"
        partial.write_bytes(png)
        partial.replace(DOC_IMAGES / f"{name}.png")


def log_in(pg, url: str) -> None:
    """The server's authentication: a Login card with one field taking `user:password`. On a busy machine
    the UI sometimes showed the card again after the click (the credential not yet stored when the page
    was reloaded, seen in CI): then it is filled in again, as a person would."""
    pg.goto(url)
    card = pg.get_by_placeholder("admin:pass")
    for attempt in range(4):
        card.fill(CREDENTIAL)
        snap(pg, "login")
        pg.get_by_role("button", name="Login").click()
        pg.wait_for_load_state("networkidle")
        try:
            card.wait_for(state="hidden", timeout=15_000)
        except PlaywrightTimeoutError:
            continue
        pg.goto(url)
        pg.wait_for_load_state("networkidle")
        time.sleep(1)
        if not card.is_visible():
            return
    raise AssertionError("the Login card stayed after four attempts with the credential")


def assert_no_engine_traceback(library) -> None:
    """A named ending (Invalid parameters, Dry run, ...) logs no traceback in the worker's log."""
    log = library.log.read_text()
    assert "Engine execution exited with unexpected exception" not in log, log[-5000:]


def runs_of(library) -> list[dict]:
    return api(library.api, "/flow_runs/filter", {"deployments": {"id": {"any_": [library.deployment["id"]]}}})


def final_state_of(library, run_id: str, *, paused_is_final: bool = False, timeout: float = 240) -> dict:
    def done():
        run = api(library.api, f"/flow_runs/{run_id}")
        final = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"} | ({"PAUSED"} if paused_is_final else set())
        return run if run["state"] and run["state"]["type"] in final else None

    try:
        return wait_for(done, timeout, f"flow run {run_id}")
    except BaseException:
        print(library.log.read_text()[-6000:])
        print(api(library.api, f"/flow_runs/{run_id}")["state"])
        raise


def report_artifact(library, run_id: str) -> dict | None:
    artifacts = api(library.api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]},
                                                                     "key": {"any_": ["bulk-fine-waiving-report"]}},
                                                  "sort": "CREATED_DESC"})  # the final report, not the preview
    return artifacts[0] if artifacts else None


def report_of(library, run_id: str) -> str:
    artifact = report_artifact(library, run_id)
    return artifact["data"] if artifact else ""


def page_ready(pg) -> None:
    """The form holds the deployment's parameters (they load after the fields show)."""
    pg.get_by_text("Fine threshold", exact=True).wait_for()
    pg.wait_for_load_state("networkidle")
    pg.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value === '5000')")
    time.sleep(1)


def press_submit(pg, runs, before: set[str]) -> None:
    """Submit the run form and wait until the UI has taken it (`runs()`: the deployment's flow runs,
    `before`: the ids of those there were)."""
    try:
        for _ in range(3):
            pg.get_by_role("button", name="Submit").click()
            try:
                # The UI routes within one page: the new URL says the form was taken (its load event is
                # long past, and waiting for another one timed out now and then on a busy machine).
                pg.wait_for_url("**tab=Runs**", wait_until="commit", timeout=30_000)
                return
            except PlaywrightTimeoutError:
                # Now and then (in CI too, on a quiet machine) the click was taken by nothing: still the
                # form, and no run made. Pressed again only then, so a run is never started twice.
                if [r for r in runs() if r["id"] not in before]:
                    return
        raise AssertionError("the run form did not take Submit, three times")
    finally:
        snap(pg, "submitted")


def submit_form(pg, library, *, threshold: str, reason: str, dry_run: bool, comment: str = "",
                picture: str | None = None) -> str:
    """Fill the waive deployment's Custom run form and submit it; the new flow run's id. With `picture`,
    the filled-in form is the manual's picture of that name."""
    page_ready(pg)
    pg.get_by_label("Fine threshold").fill(threshold)
    pg.get_by_role("button", name="Select Waive reason").click()
    pg.get_by_role("option", name=reason, exact=True).click()
    if comment:
        pg.get_by_label("Comment", exact=True).fill(comment)
    if not dry_run:
        pg.get_by_role("switch", name="Dry run").click()
    if picture:  # from the limits down: what a librarian fills in, and the switches
        pg.get_by_text("Leave out users with overdue loans", exact=True).evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.5)
        snap(pg, picture, docs=True)
    before = {r["id"] for r in runs_of(library)}
    press_submit(pg, lambda: runs_of(library), before)
    new = wait_for(lambda: [r for r in runs_of(library) if r["id"] not in before], 30, "the new flow run")
    assert len(new) == 1
    return new[0]["id"]


def test_the_api_refuses_a_request_without_the_credential(library):
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(library.api, "/deployments/filter", {}, auth=None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as wrong:
        api(library.api, "/deployments/filter", {}, auth="librarian:wrong")
    assert wrong.value.code == 401
    deployed = {d["name"] for d in api(library.api, "/deployments/filter", {})}  # deploy.py got in with it
    assert {"nightly", "ad-hoc"} <= deployed

    # The command line: with the credential it works, without it the server refuses it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=library.api, PREFECT_HOME=str(library.log.parent / "cli-home"))
    prefect = [str(Path(sys.executable).with_name("prefect")), "deployment", "ls"]
    with_credential = subprocess.run(prefect, env={**env, "PREFECT_API_AUTH_STRING": CREDENTIAL},
                                     capture_output=True, text=True, timeout=120)
    assert with_credential.returncode == 0 and "ad-hoc" in with_credential.stdout, with_credential.stderr
    without = subprocess.run(prefect, env=env, capture_output=True, text=True, timeout=120)
    assert without.returncode != 0 and "401" in without.stdout + without.stderr


def test_bad_input_ends_at_once_in_one_named_line_without_a_traceback(library):
    run = api(library.api, f"/deployments/{library.deployment['id']}/create_flow_run",
              {"parameters": {"max_fine_threshold": 20.505, "waive_reason": "AMNESTY"}})
    run = final_state_of(library, run["id"])
    assert (run["state"]["type"], run["state"]["name"]) == ("FAILED", "Invalid parameters"), run["state"]
    assert run["state"]["message"] == "Fine threshold: at most 2 decimals (cents) (got 20.505)"
    assert run["name"].startswith("waive-")
    assert_no_engine_traceback(library)


def test_the_waive_form_offers_the_fields_in_order_and_the_codes_as_dropdowns(library, page):
    run_url = f"{library.ui}/v2/deployments/deployment/{library.deployment['id']}/run"
    log_in(page, run_url)
    page_ready(page)
    labels = [t.strip() for t in page.locator("label[data-slot=label]").all_inner_texts()]
    assert [t for t in labels if t in WAIVE_FIELDS] == WAIVE_FIELDS, labels
    snap(page, "waive-form")
    threshold = page.get_by_label("Fine threshold")
    assert threshold.get_attribute("type") == "number" and threshold.get_attribute("min") == "0.01"

    page.get_by_role("button", name="Select Waive reason").click()
    options = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    assert options == ["AMNESTY", "ERROR", "GOODWILL", "UNCOLLECTABLE"], options  # never USER_PURGED
    snap(page, "waive-form-reasons")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Select User groups").click()
    assert "UNDERGRAD" in [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")


def test_a_dry_run_from_the_form_reports_what_a_real_run_would_do(library, page):
    log_in(page, f"{library.ui}/v2/deployments/deployment/{library.deployment['id']}/run")
    run_id = submit_form(page, library, threshold="10", reason="AMNESTY", dry_run=True,
                         comment="Winter amnesty 2026", picture="waive-run-form")
    run = final_state_of(library, run_id)
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Dry run"), run["state"]
    assert run["name"].startswith("waive-") and run["name"].endswith("-dry-run")
    report = report_of(library, run_id)
    assert ("**Dry run: a real run would waive 6 fines of 3 users, 11.25 EUR in total; "
            "1 user skipped (above the fine threshold).**") in report, report
    page.goto(f"{library.ui}/v2/runs/flow-run/{run_id}")
    page.get_by_text("Dry run", exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    time.sleep(2)
    snap(page, "dry-run")
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("bulk-fine-waiving-report").first.wait_for()
    snap(page, "dry-run-artifacts")


def test_a_real_run_is_approved_through_the_resume_form_and_ends_completed(library, page):
    log_in(page, f"{library.ui}/v2/deployments/deployment/{library.deployment['id']}/run")
    run_id = submit_form(page, library, threshold="10", reason="GOODWILL", dry_run=False)
    run = final_state_of(library, run_id, paused_is_final=True)
    assert run["state"]["type"] == "PAUSED", run["state"]

    page.goto(f"{library.ui}/v2/runs/flow-run/{run_id}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Open menu").last.click()  # the run's menu, top right
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog")
    headline = dialog.get_by_text("Waive 6 fines of 3 users, 11.25 EUR in total; 1 user skipped")
    headline.wait_for()
    decision = dialog.get_by_role("button", name="Select Decision")
    for seen in (headline, decision):  # readable without scrolling at 1280x800
        box = seen.bounding_box()
        assert box and box["y"] + box["height"] <= 800, box
    snap(page, "approval-form")
    decision.click()
    page.get_by_role("option", name="Approve", exact=True).click()
    dialog.get_by_label("Your name").fill("Kari Nordmann")
    snap(page, "waive-approval", docs=True)  # before the note: typing it scrolls the sentence out of sight
    dialog.get_by_label("Note").fill("Goodwill week")
    snap(page, "approval-form-filled")
    for _ in range(3):  # a click taken by nothing (the dialog still there, the run still paused): again
        dialog.get_by_role("button", name="Resume").click()
        try:
            dialog.wait_for(state="hidden", timeout=30_000)
            break
        except PlaywrightTimeoutError:
            if api(library.api, f"/flow_runs/{run_id}")["state"]["type"] != "PAUSED":
                break
    else:
        raise AssertionError("the Resume form did not take Resume, three times")

    run = final_state_of(library, run_id)
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Completed"), run["state"]
    report = report_of(library, run_id)
    assert "Bulk Fine Waiving: real run" in report and "| Fines waived | 6 |" in report, report
    assert "- **Approval:** Run approved by Kari Nordmann on " in report
    page.reload()
    page.get_by_text("Completed", exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    time.sleep(2)  # the timeline draws after the data has come
    snap(page, "completed")

    # The report as the librarian reads it: the artifact's own page.
    page.goto(f"{library.ui}/v2/artifacts/artifact/{report_artifact(library, run_id)['id']}")
    page.get_by_text("Approval:").first.wait_for()
    page.wait_for_load_state("networkidle")
    snap(page, "waive-report", docs=True)
    # The runs of the deployment (the earlier tests' too), each under its named final state.
    page.goto(f"{library.ui}/v2/deployments/deployment/{library.deployment['id']}?tab=Runs")
    page.get_by_text("Completed", exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    snap(page, "waive-runs", docs=True)
    assert_no_engine_traceback(library)


# The merge form: the ways to give pairs first (one pair, a text area of lines, a file, the review queue).
MERGE_FIELDS = ["From user", "To user", "Pairs (Optional)", "Pairs file", "Round", "From the review queue",
                "Segments (Optional)", "Copy as internal", "Run date (Optional)", "Dry run", "Require approval",
                "Batch size", "Approval timeout (seconds)"]
# A day limit left empty leaves that kind alone; 0 is a real limit (the contract: more than 0 days).
ANONYMIZE_FIELDS = ["Loans older than (days) (Optional)", "Requests older than (days) (Optional)",
                    "Fees older than (days) (Optional)",
                    "Libraries (Optional)", "User groups (Optional)", "Loans kept per user", "Run date (Optional)",
                    "Dry run", "Require approval", "Batch size", "Approval timeout (seconds)"]


def open_run_form(pg, library, name: str) -> dict:
    deployment = api(library.api, f"/deployments/name/{name}")
    log_in(pg, f"{library.ui}/v2/deployments/deployment/{deployment['id']}/run")
    pg.get_by_text("Batch size", exact=True).wait_for()
    pg.wait_for_load_state("networkidle")
    pg.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value === '5000')")
    time.sleep(1)
    return deployment


def test_the_merge_form_takes_pairs_as_lines_pasted_into_one_text_area(library, page):
    deployment = open_run_form(page, library, "merge-users/ad-hoc")
    labels = [t.strip() for t in page.locator("label[data-slot=label]").all_inner_texts()]
    assert [t for t in labels if t in MERGE_FIELDS] == MERGE_FIELDS, labels
    pairs = page.get_by_label("Pairs (Optional)")
    assert pairs.evaluate("e => e.tagName") == "TEXTAREA"
    pairs.fill("bo,ada\nbig\tcy\n")  # a typed line and a line pasted from a spreadsheet
    snap(page, "merge-form")
    merge_runs = lambda: api(library.api, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})  # noqa: E731
    press_submit(page, merge_runs, {r["id"] for r in merge_runs()})
    runs = merge_runs()
    run = final_state_of(library, runs[0]["id"])
    assert (run["state"]["type"], run["state"]["name"]) == ("COMPLETED", "Dry run"), run["state"]
    assert run["state"]["message"].startswith("2 pairs would be done"), run["state"]


def test_the_anonymise_form_shows_day_limits_as_numbers_and_libraries_as_a_dropdown(library, page):
    open_run_form(page, library, "anonymize-loan-history/nightly")
    labels = [t.strip() for t in page.locator("label[data-slot=label]").all_inner_texts()]
    assert [t for t in labels if t in ANONYMIZE_FIELDS] == ANONYMIZE_FIELDS, labels
    loans = page.get_by_label("Loans older than (days) (Optional)")
    assert (loans.get_attribute("type"), loans.get_attribute("min"), loans.input_value()) == ("number", "0", "365")
    page.get_by_role("button", name="Select Libraries").click()
    assert [o.strip() for o in page.get_by_role("option").all_inner_texts()] == ["MAIN"]
    page.keyboard.press("Escape")
    snap(page, "anonymize-form")

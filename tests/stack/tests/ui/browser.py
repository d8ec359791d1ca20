"""The web UI in a real browser (Debian's chromium driven by Playwright), against a running
Ferry stack the Rust test `ui::the_web_ui_in_a_browser` started. Run by that test only.

Checks: people sign in through svc-api's issuer (code flow with PKCE) and get an HttpOnly,
SameSite=Lax session; the deployment page shows the pipeline graph; a viewer sees Approve
disabled with the reason, and a POST they forge anyway is refused (403), as is one without the
CSRF token; another tenant's deployment URL and tenant answer 404; a deployer approves the
waiting step and sees the graph move on (live, through server-sent events, no reload), then
rolls the running canary back and sees it rolled back, then redeploys with a reason (the
Rust test checks the reason reached the audit log); who started a deployment and who approved
show as a credential's name and a person's email, never an id; a canary's pods show as the new
version's ready of desired and the old version's size; an administrator creates a credential
and sees its secret once; no console errors or uncaught exceptions on any page. Screenshots of
the main pages go to FERRY_UI_SCREENSHOTS.
"""

import json
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["FERRY_UI_BASE"]
TENANT = os.environ["FERRY_UI_TENANT"]
DEPLOYMENT = os.environ["FERRY_UI_DEPLOYMENT"]
OTHER_DEPLOYMENT = os.environ["FERRY_UI_OTHER_DEPLOYMENT"]
OTHER_TENANT = os.environ["FERRY_UI_OTHER_TENANT"]
SHOTS = os.environ["FERRY_UI_SCREENSHOTS"]
USERS = json.loads(os.environ["FERRY_UI_USERS"])
CHROMIUM = os.environ.get("FERRY_UI_CHROMIUM", "/usr/bin/chromium")
LIVE = 90_000  # ms: how long a live change may take to show (scheduler, simulator, SSE)

expect.set_options(timeout=20_000)
problems = []
dep_url = f"{BASE}/ui/t/{TENANT}/deployments/{DEPLOYMENT}"


def step(text):
    print(f"browser: {text}", flush=True)


def watch(page, who):
    def console(message):
        if message.type == "error":
            problems.append(f"{who}: console error on {page.url}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"{who}: uncaught {error} on {page.url}"))


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def sign_in(browser, who, **options):
    email, password = USERS[who]
    context = browser.new_context(**options)
    page = context.new_page()
    watch(page, who)
    page.goto(f"{BASE}/ui")
    expect(page).to_have_url(re.compile(r"/ui/sign-in"))
    page.get_by_role("link", name="Sign in with a Ferry account").click()
    expect(page).to_have_url(re.compile(r"/oauth/authorize\?"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(f"/ui/t/{TENANT}/deployments$"))
    session = [c for c in context.cookies() if c["name"] == "ferry_session"]
    assert session, "no session cookie"
    assert session[0]["httpOnly"], "the session cookie must be HttpOnly"
    assert session[0]["sameSite"] == "Lax", session[0]
    return context, page


def target(page, name):
    return page.locator(f"section#target-{name}")


def node(page, name):
    return page.locator(f".graph svg g[data-target='{name}']")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        # A wrong password is refused on the form.
        context = browser.new_context()
        page = context.new_page()
        watch(page, "nobody")
        page.goto(f"{BASE}/ui/sign-in")
        page.get_by_role("link", name="Sign in with a Ferry account").click()
        page.get_by_label("Email").fill(USERS["viewer"][0])
        page.get_by_label("Password").fill("not-the-password")
        with page.expect_response(re.compile(r"/oauth/authorize$")) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401, answer.value.status
        expect(page.get_by_role("alert")).to_contain_text("wrong")
        shot(page, "01-sign-in")
        # (the 401 of the form post is the expected answer, not a page error)
        problems[:] = [x for x in problems if "status of 401" not in x]
        context.close()

        step("viewer signs in and sees the list and the graph")
        viewer, page = sign_in(browser, "viewer")
        expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
        expect(page.get_by_role("link", name="hello-stack").first).to_be_visible()
        shot(page, "02-deployments")
        page.goto(dep_url)
        expect(node(page, "dev")).to_be_visible()
        expect(node(page, "prod")).to_be_visible()
        expect(page.locator(".graph path.edge")).to_have_count(1)
        # prod waits for its approval: the viewer's Approve is disabled, with why.
        approve = target(page, "prod").get_by_role("button", name="Approve")
        expect(approve).to_be_disabled(timeout=LIVE)
        expect(target(page, "prod")).to_contain_text("This needs one of the roles")
        # Who started it is named (the deployment was started with the "admin" credential).
        expect(page.locator("dd.started-by")).to_have_text("credential admin")
        shot(page, "03-deployment-viewer")

        step("a POST forged by the viewer is refused")
        csrf = page.locator("input[name=_csrf]").first.get_attribute("value")
        action = f"{BASE}/ui/t/{TENANT}/deployments/{DEPLOYMENT}/actions/approve"
        forged = viewer.request.post(
            action,
            form={"_csrf": csrf, "target": "prod", "reason": "forged"},
            headers={"Origin": BASE},
        )
        assert forged.status == 403, f"forged approve answered {forged.status}"
        no_token = viewer.request.post(
            action, form={"target": "prod", "reason": "forged"}, headers={"Origin": BASE}
        )
        assert no_token.status == 403, f"approve without the CSRF token answered {no_token.status}"
        cross_site = viewer.request.post(
            action,
            form={"_csrf": csrf, "target": "prod", "reason": "forged"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status == 403, f"approve from another origin answered {cross_site.status}"

        step("another tenant's deployment and the other tenant answer 404")
        other = viewer.request.get(f"{BASE}/ui/t/{TENANT}/deployments/{OTHER_DEPLOYMENT}")
        assert other.status == 404, f"another tenant's deployment answered {other.status}"
        assert "hello-stack" not in other.text()
        foreign = viewer.request.get(f"{BASE}/ui/t/{OTHER_TENANT}/deployments/{OTHER_DEPLOYMENT}")
        assert foreign.status == 404, f"a tenant the viewer is not in answered {foreign.status}"
        admin_only = viewer.request.get(f"{BASE}/ui/t/{TENANT}/credentials")
        assert admin_only.status == 403, f"credentials for a viewer answered {admin_only.status}"
        viewer.close()

        step("deployer approves the waiting step; the graph moves on without a reload")
        deployer, page = sign_in(browser, "deployer")
        page.goto(dep_url)
        prod = target(page, "prod")
        prod.locator("summary", has_text="Approve").click()
        prod.locator("form[action$='/actions/approve'] textarea").fill("dev looks good")
        shot(page, "04-approve-confirmation")
        prod.get_by_role("button", name="Confirm: approve prod").click()
        # The gate before prod passes and the canary walks its steps: live, no navigation.
        expect(page.locator(".graph circle.gate.g-passed")).to_have_count(1, timeout=LIVE)
        expect(target(page, "prod").locator("ol.steps li.current")).to_be_visible(timeout=LIVE)
        expect(node(page, "prod")).to_have_class(re.compile(r"st-(running|paused)"), timeout=LIVE)
        # The history names the person who approved, not their id.
        history = page.locator("table").filter(has_text="When").last
        expect(history).to_contain_text(f"approved by {USERS['deployer'][0]}")
        expect(history).not_to_contain_text(re.compile(r"by [0-9a-f]{8}-[0-9a-f]{4}-"))
        shot(page, "05-canary-running")

        step("deployer rolls the running canary back")
        # The canary stops at 50% for its approval (step 4); roll it back from there.
        expect(target(page, "prod").locator("ol.steps li.current")).to_have_text(re.compile("approval"), timeout=LIVE)
        # Pods: the new version's ready of desired (the canary's size at 50% of 4 is 2), and
        # the old version's size before the rollout; never the Deployment's size as "new".
        expect(node(page, "prod")).to_contain_text("new 2/2 ready", timeout=LIVE)
        expect(target(page, "prod").locator("dd.pods")).to_have_text(
            "new 2/2 ready · old version: 4 before the rollout", timeout=LIVE
        )
        prod = target(page, "prod")
        prod.locator("summary", has_text="Roll back").click()
        prod.locator("form[action$='/actions/rollback'] textarea").fill("canary errors in prod")
        prod.get_by_role("button", name="Confirm: roll back prod").click()
        expect(node(page, "prod")).to_have_class(re.compile(r"st-rolled_back"), timeout=LIVE)
        expect(target(page, "prod").locator(".badge").first).to_have_text("rolled back")
        expect(target(page, "prod").locator("dd.pods")).to_have_text("rolled back: old version back at 4")
        expect(target(page, "dev").locator("dd.pods")).to_have_text("new 4/4 ready · old version removed")
        expect(page.locator("h1 .badge")).to_have_count(1)
        history = page.locator("table").filter(has_text="When").last
        expect(history).to_contain_text("rolled back")
        shot(page, "06-rolled-back")

        step("deployer redeploys with a reason and lands on the new deployment")
        page.locator("summary", has_text="Redeploy").click()
        page.locator("form[action$='/actions/redeploy'] textarea").fill("redeploy after the rollback")
        page.get_by_role("button", name="Confirm: redeploy").click()
        expect(page).not_to_have_url(dep_url)
        expect(page).to_have_url(re.compile(f"/ui/t/{TENANT}/deployments/[0-9a-f-]{{36}}$"))
        expect(page.locator("dd.started-by")).to_have_text(f"{USERS['deployer'][0]} (you)")
        shot(page, "06b-redeployed")
        deployer.close()

        step("administrator pages, light and dark, laptop and phone")
        admin, page = sign_in(browser, "admin")
        page.goto(f"{BASE}/ui/t/{TENANT}/agents")
        expect(page.get_by_role("cell", name="dev-cluster")).to_be_visible()
        shot(page, "07-agents")
        page.goto(f"{BASE}/ui/t/{TENANT}/credentials")
        page.get_by_label("Name").fill("ui-made")
        page.get_by_label("Deployer").check()
        page.get_by_role("button", name="Create").click()
        secret = page.locator("#new-secret")
        expect(secret).to_be_visible()
        shown = secret.inner_text().strip()
        assert len(shown) >= 40, f"the secret shown: {shown!r}"
        shot(page, "08-credential-created")
        page.goto(f"{BASE}/ui/t/{TENANT}/credentials")
        expect(page.locator("#new-secret")).to_have_count(0)
        for path in ["secrets", "users", "metric-providers"]:
            page.goto(f"{BASE}/ui/t/{TENANT}/{path}")
            expect(page.locator("main h1")).to_be_visible()
        shot(page, "09-metric-providers")
        # Signing out ends the session: the next page asks to sign in again.
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/ui/sign-in"))
        page.goto(f"{BASE}/ui/t/{TENANT}/deployments")
        expect(page).to_have_url(re.compile(r"/ui/sign-in"))
        admin.close()

        phone, page = sign_in(
            browser, "viewer", color_scheme="dark", viewport={"width": 390, "height": 844}
        )
        page.goto(dep_url)
        expect(node(page, "prod")).to_be_visible()
        shot(page, "10-deployment-dark-phone")
        phone.close()
        browser.close()

    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    step(f"all checks passed; screenshots in {SHOTS}")


if __name__ == "__main__":
    main()

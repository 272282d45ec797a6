"""Walks both consoles in headless Chromium (Debian's, through its
chromedriver), as an operator and a tenant would, and fails on the first
thing that does not happen. Prints one JSON line of what it saw at the end.

    console_walk.py PUBLIC_URL ADMIN_URL ADMIN_TOKEN IMAGE SCREENSHOT_DIR

The walk: a wrong token is refused; the operator creates a tenant whose name
is markup (it must show as text and run nothing), issues it a key; the tenant
signs in, resizes an image, sees the usage chart count it, creates a key;
the operator turns `format_jxl` on for that tenant and the tenant's console
offers and runs it; the operator revokes the tenant's key and the tenant's
next request is refused; the fleet view and the audit show the node and the
requests; signing out leaves nothing behind. A screenshot of each page.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

XSS_NAME = "<img src=x onerror=alert(1)>"
WAIT = 30


def until(what, check, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - the page is still changing
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for: {what}")
        time.sleep(0.05)


class Page:
    def __init__(self, driver, shots):
        self.d = driver
        self.shots = shots

    def el(self, element_id):
        return until(f"#{element_id}", lambda: self.d.find_element(By.ID, element_id))

    def text(self, element_id):
        return self.el(element_id).text

    def type(self, element_id, value):
        field = self.el(element_id)
        field.clear()
        field.send_keys(value)

    def click(self, element_id):
        until(f"#{element_id} clickable", lambda: self.el(element_id).is_displayed() and self.el(element_id).is_enabled())
        self.el(element_id).click()

    def tab(self, name):
        self.d.find_element(By.CSS_SELECTOR, f'nav button[data-tab="{name}"]').click()
        until(f"tab {name}", lambda: self.el(name).is_displayed())

    def shot(self, name):
        self.d.set_window_size(1280, max(800, self.d.execute_script("return document.body.scrollHeight") + 40))
        self.d.save_screenshot(os.path.join(self.shots, f"{name}.png"))

    def no_alert(self):
        try:
            alert = self.d.switch_to.alert
            raise SystemExit(f"a script ran: alert {alert.text!r}")
        except NoAlertPresentException:
            pass


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def operator_signs_in(op, admin, token):
    op.d.get(f"{admin}/console/")
    op.type("token", "not-the-token")
    op.el("signin-form").submit()
    until("wrong token refused", lambda: "not the admin token" in op.text("signin-error"))
    op.shot("operator-signin")
    op.type("token", token)
    op.el("signin-form").submit()
    until("tenants tab", lambda: op.el("tenants").is_displayed())


def operator_creates_tenant(op):
    op.type("new-name", XSS_NAME)
    op.type("new-rps", "50")
    op.el("tenant-create").submit()
    until("tenant detail", lambda: op.text("tenant-title") == XSS_NAME)
    op.no_alert()
    markup = op.d.execute_script("return document.querySelectorAll('img[src=\"x\"]').length")
    assert markup == 0, "the tenant's name became markup"
    until("name in the table as text", lambda: XSS_NAME in op.text("tenants-rows"))
    tenant_id = op.d.find_element(By.CSS_SELECTOR, "#tenant-detail code").text
    op.click("tenant-issue-key")
    secret = until("secret shown", lambda: op.text("tenant-key-secret"))
    op.type("tenant-search", "onerror")
    until("search finds it", lambda: XSS_NAME in op.text("tenants-rows"))
    op.shot("operator-tenants")
    return tenant_id, secret


def tenant_signs_in_and_resizes(tn, public, secret, image):
    tn.d.get(f"{public}/console/")
    tn.type("key", "rsz_wrong")
    tn.el("signin-form").submit()
    until("bad key refused", lambda: "not valid" in tn.text("signin-error"))
    tn.type("key", secret)
    tn.el("signin-form").submit()
    until("usage tab", lambda: tn.el("usage").is_displayed())
    tn.tab("try")
    tn.el("try-file").send_keys(image)
    tn.type("try-width", "200")
    Select(tn.el("try-format")).select_by_visible_text("png")
    tn.click("try-run")
    size = until("result rendered", lambda: tn.el("try-stats").get_attribute("data-size"))
    assert size.startswith("200x"), size
    curl = tn.text("try-curl")
    assert "/v1/resize?width=200" in curl and secret not in curl, curl
    tn.shot("tenant-try")
    return size


def tenant_sees_usage(tn):
    tn.tab("usage")

    def counted():
        tn.el("usage-form").submit()
        time.sleep(0.3)
        return int(tn.el("usage-total").get_attribute("data-requests") or 0) >= 1

    until("usage counts the resize", counted)
    until("chart drawn", lambda: tn.d.find_elements(By.CSS_SELECTOR, "#usage-chart canvas"))
    tn.shot("tenant-usage")
    tn.tab("audit")

    def listed():
        tn.el("audit-form").submit()
        time.sleep(0.3)
        return "/v1/resize" in tn.text("audit-rows")

    until("audit lists the resize", listed)
    tn.shot("tenant-requests")


def tenant_creates_key(tn):
    tn.tab("keys")
    until("keys listed", lambda: "live (this session)" in tn.text("keys-rows"))
    tn.click("keys-create")
    new_secret = until("new secret", lambda: tn.text("keys-secret"))
    until("two keys", lambda: len(tn.d.find_elements(By.CSS_SELECTOR, "#keys-rows tbody tr")) == 2)
    tn.shot("tenant-keys")
    return new_secret


def operator_turns_on_jxl(op, tenant_id):
    op.tab("flags")
    op.type("flag-format_jxl-overrides", f"{tenant_id}=on")
    op.click("flag-format_jxl-save")
    until("flag saved", lambda: "1 override(s)" in op.text("flag-format_jxl-card"))
    op.shot("operator-flags")


def tenant_uses_jxl(tn, image):
    tn.d.refresh()  # the session keeps the key; the console asks again which flags are on
    until("signed in again", lambda: tn.el("tabs").is_displayed())
    tn.tab("try")
    until("jxl offered", lambda: "jxl" in [o.text for o in Select(tn.el("try-format")).options])
    Select(tn.el("try-format")).select_by_visible_text("jxl")
    tn.el("try-file").send_keys(image)  # a reload empties the file input
    tn.click("try-run")
    until("jxl made", lambda: "image/jxl" in tn.text("try-result-caption"))


def operator_revokes_and_tenant_is_refused(op, tn, tenant_id):
    op.tab("tenants")
    op.type("tenant-search", tenant_id)
    until("one tenant", lambda: len(op.d.find_elements(By.CSS_SELECTOR, "#tenants-rows tbody tr")) == 1)
    op.d.find_element(By.CSS_SELECTOR, "#tenants-rows button.link").click()
    until("keys shown", lambda: op.d.find_elements(By.CSS_SELECTOR, "#tenant-keys-rows button.danger"))
    # The first key issued is the one the tenant's console signed in with.
    op.d.find_elements(By.CSS_SELECTOR, "#tenant-keys-rows button.danger")[0].click()
    until("revoked", lambda: "revoked" in op.text("tenant-keys-rows"))
    tn.click("try-run")
    until("refused", lambda: "unauthenticated" in tn.text("try-error"))
    tn.shot("tenant-refused")


def operator_views(op, tenant_id):
    op.tab("fleet")
    until("fleet row", lambda: "serve" in op.text("fleet-rows"))
    until("a rate after two polls", lambda: op.d.execute_script(
        "return [...document.querySelectorAll('#fleet-rows tbody td')].some(td => /^\\d+\\.\\d$/.test(td.textContent))"))
    op.shot("operator-fleet")
    op.tab("usage")
    until("top tenants", lambda: XSS_NAME in op.text("usage-top-rows"))
    op.d.find_element(By.CSS_SELECTOR, "#usage-top-rows button.link").click()
    until("tenant chart", lambda: op.d.find_elements(By.CSS_SELECTOR, "#usage-chart canvas"))
    op.shot("operator-usage")
    op.tab("audit")
    Select(op.el("audit-tenant")).select_by_value(tenant_id)
    op.el("audit-form").submit()
    until("audit rows", lambda: "/v1/resize" in op.text("audit-rows"))
    op.shot("operator-audit")
    op.no_alert()


def signing_out_forgets(page):
    page.click("signout")
    until("sign-in shown", lambda: page.el("signin").is_displayed())
    left = page.d.execute_script("return [sessionStorage.length, localStorage.length, document.cookie]")
    assert left == [0, 0, ""], left


def csp_violations(page):
    return [e["message"] for e in page.d.get_log("browser") if "Content Security Policy" in e["message"]]


def main():
    public, admin, token, image, shots = sys.argv[1:6]
    image = os.path.realpath(image)
    os.makedirs(shots, exist_ok=True)
    op_driver, tn_driver = browser(), browser()
    try:
        op, tn = Page(op_driver, shots), Page(tn_driver, shots)
        operator_signs_in(op, admin, token)
        tenant_id, secret = operator_creates_tenant(op)
        size = tenant_signs_in_and_resizes(tn, public, secret, image)
        tenant_sees_usage(tn)
        second = tenant_creates_key(tn)
        operator_turns_on_jxl(op, tenant_id)
        tenant_uses_jxl(tn, image)
        operator_revokes_and_tenant_is_refused(op, tn, tenant_id)
        operator_views(op, tenant_id)
        violations = csp_violations(op) + csp_violations(tn)
        assert not violations, violations
        signing_out_forgets(tn)
        signing_out_forgets(op)
        print(json.dumps({"tenant": tenant_id, "revoked": secret, "second": second, "size": size}), flush=True)
    finally:
        op_driver.quit()
        tn_driver.quit()


main()

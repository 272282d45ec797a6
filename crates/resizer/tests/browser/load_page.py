"""Loads a page in headless Chromium (Debian's, through its chromedriver) and
prints, as one JSON line per load, every <img>'s id and natural size once all
have finished loading; then reloads and prints again.

    load_page.py FILE_URL
"""

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def images(driver):
    deadline = time.monotonic() + 30
    script = "return Array.from(document.images).every(i => i.complete)"
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise SystemExit("images did not finish loading within 30 s")
        time.sleep(0.05)
    return driver.execute_script(
        "return Array.from(document.images).map(i => ({id: i.id, w: i.naturalWidth, h: i.naturalHeight}))"
    )


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.set_page_load_timeout(30)
        driver.get(sys.argv[1])
        print(json.dumps(images(driver)), flush=True)
        driver.refresh()
        print(json.dumps(images(driver)), flush=True)
    finally:
        driver.quit()


main()

#!/usr/bin/env python3
"""The web UI in headless Chromium, driven over WebDriver (chromedriver), stdlib only.

  tests/ui/e2e.py GATEWAY_BINARY OUTPUT_DIR

Starts the gateway, pushes groups over HTTP, opens the page, checks they are listed,
expands one, filters, deletes one through its button (accepting the confirmation) and
sees it gone from /metrics, checks the Status tab and a phone-width layout, fails on any
JavaScript error, and saves OUTPUT_DIR/ui.png. Then pushes 10,000 groups and measures
the page: HTML size and the time until the list is shown (reported, not asserted).
"""

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import shutil

# On PATH, or named by the environment (as the Rust tests' PGW_BIN_<NAME>).
CHROMIUM = os.environ.get("PGW_BIN_CHROMIUM") or shutil.which("chromium") or "chromium"
CHROMEDRIVER = (os.environ.get("PGW_BIN_CHROMEDRIVER") or shutil.which("chromedriver")
                or "chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Gateway:
    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--web.listen-address=127.0.0.1:0", "--web.enable-admin-api"],
            stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            m = re.search(r"listening on address=\S*:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise AssertionError("gateway did not listen")
        self.url = f"http://127.0.0.1:{self.port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=b""):
        self.conn.request(method, path, body=body)
        r = self.conn.getresponse()
        return r.status, r.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Browser:
    """A WebDriver session: just the commands this test needs."""

    def __init__(self):
        self.port = free_port()
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait("chromedriver", lambda: self._ready())
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def _ready(self):
        try:
            return self.call("GET", "/status").get("ready")
        except OSError:
            return False

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.read().decode()}") from None

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.s("POST", f"/element/{self.find(css)}/value", {"text": text})

    def accept_alert(self):
        wait("the confirmation", lambda: self._alert_text())
        self.s("POST", "/alert/accept", {})

    def _alert_text(self):
        try:
            return self.s("GET", "/alert/text")
        except AssertionError:
            return None

    def errors(self):
        logs = self.s("POST", "/se/log", {"type": "browser"})
        return [e["message"] for e in logs if e.get("level") == "SEVERE"]

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def quit(self):
        try:
            self.s("DELETE", "")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)


def visible_groups(browser):
    return browser.js("return [...document.querySelectorAll('#groups .group .labels')]"
                      ".map(e => e.textContent)")


def main(binary, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    gw = Gateway(binary)
    browser = None
    try:
        pushes = {
            "/metrics/job/edge/instance/device-1":
                '# HELP temp_celsius Room temperature.\n# TYPE temp_celsius gauge\n'
                'temp_celsius{room="kitchen"} 21.5\ntemp_celsius{room="<b>x</b>"} 3\n',
            "/metrics/job/batch":
                '# TYPE run_seconds summary\nrun_seconds{quantile="0.5"} 1.5\n'
                'run_seconds_sum 30\nrun_seconds_count 12\n',
            "/metrics/job/backup/host/db-1": "backup_last_success 1.7e9\n",
        }
        for path, body in pushes.items():
            assert gw.request("PUT", path, body.encode())[0] == 200, path

        browser = Browser()
        browser.go(gw.url + "/")
        wait("three groups listed", lambda: len(visible_groups(browser)) == 3)
        listed = " ".join(visible_groups(browser))
        for needle in ['job="edge"', 'instance="device-1"', 'job="batch"', 'host="db-1"']:
            assert needle in listed, (needle, listed)
        assert "3 groups" in browser.js("return document.getElementById('count').textContent")

        # Expand a group: its families and samples load on demand.
        browser.click('#groups .group[data-path^="job@base64/ZWRnZQ"] .head')
        text = wait("the edge group's families", lambda: browser.js(
            "const b = document.querySelector('#groups .group[data-path^=\"job@base64/ZWRnZQ\"] .body');"
            "return b && b.dataset.loaded ? b.textContent : null"))
        for needle in ["temp_celsius", "GAUGE", "Room temperature.", 'room="kitchen"', "21.5",
                       'room="<b>x</b>"']:
            assert needle in text, (needle, text)

        # The filter box.
        browser.type("#filter", "job=batch")
        wait("the filter", lambda: visible_groups(browser) == ['job="batch"'])
        browser.js("const f = document.getElementById('filter'); f.value = '';"
                   "f.dispatchEvent(new Event('input'))")
        wait("the filter cleared", lambda: len(visible_groups(browser)) == 3)
        browser.click('#groups .group[data-path^="job@base64/ZWRnZQ"] .head')
        wait("the edge group open again", lambda: browser.js(
            "const b = document.querySelector('#groups .group[data-path^=\"job@base64/ZWRnZQ\"] .body');"
            "return b && b.dataset.loaded"))
        browser.screenshot(os.path.join(out_dir, "ui.png"))

        # Delete through the button, confirming.
        browser.click('#groups .group[data-path^="job@base64/YmFja3Vw"] .head button')
        browser.accept_alert()
        wait("the deleted group gone", lambda: len(visible_groups(browser)) == 2)
        status, metrics = gw.request("GET", "/metrics")
        assert status == 200 and b'job="backup"' not in metrics, metrics
        assert b'job="edge"' in metrics

        # The Status tab.
        browser.click("#tab-status")
        flags = wait("the status tab", lambda: browser.js(
            "const s = document.getElementById('status');"
            "return s.hidden ? null : document.getElementById('flags').textContent"))
        assert "web.listen-address" in flags, flags

        # A phone's width: nothing wider than the screen.
        browser.click("#tab-metrics")
        browser.s("POST", "/window/rect", {"width": 390, "height": 844})
        overflow = browser.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow} px wider than a phone screen"
        browser.screenshot(os.path.join(out_dir, "ui-phone.png"))
        browser.s("POST", "/window/rect", {"width": 1200, "height": 900})

        errors = browser.errors()
        assert not errors, errors

        # 10,000 groups: a page that stays small and quick.
        for i in range(10_000):
            body = f"load_metric{{i=\"{i}\"}} {i}\n".encode()
            assert gw.request("PUT", f"/metrics/job/load/instance/i{i}", body)[0] == 200
        html = gw.request("GET", "/")[1]
        groups_json = gw.request("GET", "/ui/groups")[1]
        started = time.monotonic()
        browser.go(gw.url + "/")
        wait("10,002 groups listed", lambda: browser.js(
            "return document.getElementById('count').textContent") == "10002 groups", timeout=60)
        load_s = time.monotonic() - started
        rendered = browser.js("return document.querySelectorAll('#groups .group').length")
        browser.type("#filter", "i9999")
        wait("a filter over 10,000 groups", lambda: len(visible_groups(browser)) == 1)
        errors = browser.errors()
        assert not errors, errors
        assert len(html) < 1_000_000
        print(json.dumps({
            "screenshots": [os.path.join(out_dir, "ui.png"), os.path.join(out_dir, "ui-phone.png")],
            "page_html_bytes": len(html),
            "groups_json_bytes_at_10002_groups": len(groups_json),
            "load_to_list_at_10002_groups_s": round(load_s, 3),
            "cards_rendered_at_first_paint": rendered,
        }))
    finally:
        if browser:
            browser.quit()
        gw.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

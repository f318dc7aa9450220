#!/usr/bin/env python3
"""Drives swinetd's web console in headless Chromium (Debian's chromium + chromium-driver, python3-selenium).

usage: console_driver.py CONSOLE_URL TOKEN SERVICE_NAME SERVICE_PORT

Signs in with the token, checks the service is listed as active and answers, clicks Pause,
checks the page shows it paused and a real TCP connection is refused, clicks Resume, checks it
answers again, and runs "Check files on disk". Prints one "ok - ..." line per step; exits 1 on
the first failure.
"""
import errno
import socket
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, token, name, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def echo_works():
    """A real connection to the echo service: True if it echoes, False if refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"ping\n")
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
            return data == b"ping\n"
    except ConnectionRefusedError:
        return False


def connect_errno():
    s = socket.socket()
    s.settimeout(3)
    try:
        return s.connect_ex(("127.0.0.1", port))
    finally:
        s.close()


def state_cell():
    """The state column of the service's row; the table is redrawn every 2 s, so an element
    found a moment ago may be gone: then ask again."""
    for _ in range(20):
        try:
            return driver.find_element(By.CSS_SELECTOR, f'tr[data-service="{name}"] td.state').text
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.05)
    return ""


def click(selector):
    """Clicks a button of the table, again if the redraw replaced it under the click."""
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.05)
    raise AssertionError(f"cannot click {selector}")


options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--window-size=1280,900"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(20)
wait = WebDriverWait(driver, 10)
try:
    driver.get(url)
    wait.until(EC.presence_of_element_located((By.ID, "token"))).send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait.until(EC.title_is("swinetd console"))
    print("ok - signed in with the token")

    wait.until(lambda d: state_cell().startswith("active"))
    assert echo_works(), "the service does not answer before the pause"
    print(f"ok - {name} is listed as active and answers")

    click(f'button[data-action="pause"][data-service="{name}"]')
    wait.until(lambda d: state_cell().startswith("paused"))
    print(f"ok - the page shows {name} {state_cell()!r} after clicking Pause")
    code = connect_errno()
    assert code == errno.ECONNREFUSED, f"connect after pause: {errno.errorcode.get(code, code)}"
    print("ok - a TCP connection to the paused service is refused")
    wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "paused 1 service"))

    click(f'button[data-action="resume"][data-service="{name}"]')
    wait.until(lambda d: state_cell().startswith("active"))
    deadline = time.time() + 5
    while not echo_works():
        assert time.time() < deadline, "the service does not answer after resume"
        time.sleep(0.1)
    print(f"ok - after clicking Resume {name} is active and answers again")

    driver.find_element(By.ID, "check").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "check-output"), "0 errors"))
    print("ok - Check files on disk shows the check result")
except Exception as error:  # noqa: BLE001 - report anything as a failure with the page's state
    print(f"FAIL - {type(error).__name__}: {error}")
    try:
        print(driver.find_element(By.TAG_NAME, "body").text[:2000])
    except Exception:  # noqa: BLE001
        pass
    sys.exit(1)
finally:
    driver.quit()

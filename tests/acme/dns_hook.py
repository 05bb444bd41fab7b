"""dns-01 hook for the tests: publishes/removes the TXT record in pebble-challtestsrv.

Usage: dns_hook.py set|clear MANAGEMENT_URL  (reads KEYLIFE_ACME_TXT_NAME/_VALUE from the env)
"""

import json
import os
import sys
import urllib.request


def main() -> None:
    action, url = sys.argv[1], sys.argv[2]
    host = os.environ["KEYLIFE_ACME_TXT_NAME"] + "."
    body: dict[str, str] = {"host": host}
    if action == "set":
        body["value"] = os.environ["KEYLIFE_ACME_TXT_VALUE"]
    req = urllib.request.Request(
        f"{url}/{action}-txt", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


if __name__ == "__main__":
    main()

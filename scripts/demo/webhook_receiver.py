#!/usr/bin/env python3
"""The demo's release checker: a local webhook receiver that accepts Ferry's webhook call
(202), then, as a real checker's job would, reports back on the callback URI it was sent,
with a token of the tenant (client credentials from the environment: FERRY_API,
FERRY_CLIENT_ID, FERRY_CLIENT_SECRET). Usage: webhook_receiver.py PORT LOGFILE"""
import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = os.environ["FERRY_API"]


def token():
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": os.environ["FERRY_CLIENT_ID"],
        "client_secret": os.environ["FERRY_CLIENT_SECRET"],
    }).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{API}/oauth/token", data=form), timeout=10) as r:
        return json.load(r)["access_token"]


def call_back(uri, delivery, log):
    body = json.dumps({
        "success": True,
        "mdMessage": f"**Release check passed**\n\n- delivery `{delivery}`\n- 0 blocking issues",
    }).encode()
    request = urllib.request.Request(f"{uri}/callback", data=body, method="POST", headers={
        "Authorization": f"Bearer {token()}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        log.write(f"called back: HTTP {r.status}\n")
        log.flush()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        delivery = self.headers.get("Ferry-Delivery-Id", "?")
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()
        log = self.server.log
        log.write(f"webhook {delivery}: {json.dumps(payload)}\n")
        log.flush()
        threading.Thread(target=call_back, args=(payload["callbackUri"], delivery, log)).start()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.log = open(sys.argv[2], "a")
    server.serve_forever()

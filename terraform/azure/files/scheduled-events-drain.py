#!/usr/bin/env python3
"""Drains candidate-server before Azure deletes, reboots or redeploys this VM.

The scale set's termination notification (and platform maintenance) post a scheduled event in the
instance metadata service some minutes before acting. This loop polls it; when an event of a kind
that stops the VM names this VM, it stops candidates.service (SIGTERM: /gtg 503, so the gateway's
and the load balancer's probes take the instance out, while requests are still served for the
drain period, then in-flight ones finish) and then approves the event, so the platform goes ahead
without waiting out the whole notice. Freeze events (a pause of seconds) are left alone.

Standard library only: the image's python3 is the one cloud-init runs on.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

IMDS = os.environ.get("IMDS_ENDPOINT", "http://169.254.169.254")
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
POLL_SECONDS = float(os.environ.get("POLL_SECONDS", "5"))
STOPPING = {"Terminate", "Preempt", "Reboot", "Redeploy"}


def imds(path, body=None):
    headers = {"Metadata": "true"}
    if body is not None:
        # The approval is JSON; without this header urllib sends
        # application/x-www-form-urlencoded, which is not what the endpoint documents.
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(IMDS + path, data=body, headers=headers,
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def ours(events, vm):
    return [e for e in events
            if e.get("EventType") in STOPPING and e.get("EventStatus") == "Scheduled" and vm in e.get("Resources", [])]


def main():
    vm = None
    while True:
        try:
            vm = vm or imds(NAME).strip()
            due = ours(json.loads(imds(EVENTS)).get("Events", []), vm)
            if due:
                kinds = ", ".join(sorted({e["EventType"] for e in due}))
                print(f"scheduled events: {kinds} for {vm}; stopping candidates.service (drain)", flush=True)
                subprocess.run(["systemctl", "stop", "candidates.service"], check=False)
                approval = {"StartRequests": [{"EventId": e["EventId"]} for e in due]}
                imds(EVENTS, json.dumps(approval).encode())
                print("scheduled events: approved " + ", ".join(e["EventId"] for e in due), flush=True)
                return 0
        except (OSError, ValueError, KeyError) as error:
            print(f"scheduled events: {error}", file=sys.stderr, flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())

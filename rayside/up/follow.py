"""What `rayside up` shows while it runs: a progress line (live on a TTY, plain lines otherwise) and the
driver's output, followed from the submitter pod's log through the API server."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rayside.kubeclient import KubeClient, KubeError
from rayside.objects import PODS


class Progress:
    """Report state changes: rewrite one line on a TTY, else print each new state once."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.last = ""
        self.lock = threading.Lock()

    def update(self, text: str) -> None:
        with self.lock:
            if text == self.last:
                return
            self.last = text
            if self.tty:
                self.out.write(f"\r\x1b[K{text[:200]}")
            else:
                self.out.write(f"rayside up: {text}\n")
            self.out.flush()

    def say(self, text: str) -> None:
        """A permanent line (ends the live line first)."""
        with self.lock:
            if self.tty and self.last:
                self.out.write("\r\x1b[K")
            self.out.write(f"rayside up: {text}\n")
            if self.tty and self.last:
                self.out.write(self.last[:200])
            self.out.flush()

    def close(self) -> None:
        """End the live line (TTY) so the shell prompt starts on a clean line."""
        with self.lock:
            if self.tty and self.last:
                self.out.write("\r\x1b[K")
                self.out.flush()
            self.last = ""

    def print_output(self, text: str, out: TextIO) -> None:
        with self.lock:
            if self.tty and self.last:
                self.out.write("\r\x1b[K")
                self.out.flush()
            out.write(text)
            out.flush()
            if self.tty and self.last and text.endswith("\n"):
                self.out.write(self.last[:200])
                self.out.flush()


def submitter_pod(client: KubeClient, namespace: str, job: str, cluster: str, sidecar: bool) -> str | None:
    """The pod whose log holds the driver's output: the submitter Job's pod, or (SidecarMode) the head."""
    selector = f"ray.io/cluster={cluster},ray.io/node-type=head" if sidecar else f"job-name={job}"
    if sidecar and not cluster:
        return None
    pods = client.list(PODS.path(namespace), {"labelSelector": selector}).get("items") or []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            return str(pod["metadata"]["name"])
    return None


class LogFollower:
    """Follow one pod's container log (follow=true) in a thread, writing it through `progress`."""

    def __init__(self, client: KubeClient, progress: Progress, out: TextIO | None = None) -> None:
        self.client = client
        self.progress = progress
        self.out = out or sys.stdout
        self.thread: threading.Thread | None = None
        self.text = ""

    def start(self, namespace: str, pod: str, container: str | None) -> None:
        params = {"follow": "true", **({"container": container} if container else {})}
        path = PODS.path(namespace, pod, "log")

        def run() -> None:
            try:
                for chunk in self.client.stream(path, params):
                    text = chunk.decode(errors="replace")
                    self.text += text
                    self.progress.print_output(text, self.out)
            except (KubeError, OSError):
                pass

        self.thread = threading.Thread(target=run, name="rayside-up-log", daemon=True)
        self.thread.start()

    def finish(self, timeout: float) -> None:
        """Wait up to `timeout` s for the log to end (the pod's process exits)."""
        if self.thread is not None:
            deadline = time.monotonic() + timeout
            self.thread.join(max(0.0, deadline - time.monotonic()))

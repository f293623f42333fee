"""One writer per store: a lock object beside the store, with stale-lock detection.

The lock is ``<store>.lock`` (outside the Zarr hierarchy, so Zarr never sees a
foreign object). It records host, pid and a heartbeat that the holder refreshes.
A lock is stale when its holder is a dead process on this host, or when its
heartbeat is older than ``stale_after`` seconds (holder on another machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from typing import Any

from pipeline.core.errors import RunError, UsageError
from pipeline.storage.location import StoreLocation

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 60.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreLock:
    """Context manager holding the write lock of a store for the duration of a run."""

    def __init__(self, location: StoreLocation, stale_after: float = STALE_AFTER_SECONDS):
        self.location = location
        self.stale_after = stale_after
        fs, root = location.fs()
        self.fs, self.path = fs, f"{root}.lock"
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token, "heartbeat": time.time()}

    def holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except ValueError:
            return {"host": "?", "pid": -1, "heartbeat": 0.0, "token": "corrupt"}

    def is_stale(self, record: dict[str, Any]) -> bool:
        if record.get("host") == socket.gethostname() and not _pid_alive(int(record.get("pid", -1))):
            return True
        return time.time() - float(record.get("heartbeat", 0.0)) > self.stale_after

    def acquire(self) -> None:
        try:
            self._acquire()
        except OSError as exc:
            raise UsageError(
                f"cannot write the store {self.location.url!r}: {exc.strerror or type(exc).__name__}"
            ) from None

    def _acquire(self) -> None:
        record = self.holder()
        if record is not None and not self.is_stale(record):
            age = time.time() - float(record.get("heartbeat", 0))
            raise RunError(
                f"store {self.location.url!r} is being written by another run (pid {record.get('pid')} on "
                f"{record.get('host')}, heartbeat {age:.0f} s ago); wait for it, or if it is dead "
                f"remove {self.path}"
            )
        payload = json.dumps(self._record()).encode()
        if record is None and self.location.is_local:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot write the store {self.location.url!r}: {exc.strerror}") from None
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise RunError(f"store {self.location.url!r} was locked by another run a moment ago") from None
            except OSError as exc:
                raise UsageError(f"cannot write the store {self.location.url!r}: {exc.strerror}") from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
        else:
            self.fs.pipe_file(self.path, payload)
            time.sleep(0.05)
            current = self.holder()
            if current is None or current.get("token") != self.token:
                raise RunError(f"store {self.location.url!r} was locked by another run a moment ago")
        self._thread = threading.Thread(target=self._beat, name="store-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                self.fs.pipe_file(self.path, json.dumps(self._record()).encode())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        record = self.holder()
        if record is not None and record.get("token") == self.token:
            self.fs.rm_file(self.path)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

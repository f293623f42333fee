"""Real processes on loopback for tests and benchmarks: ``dask scheduler`` and ``dask worker``,
and an S3-compatible object store (moto)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import wait_for

DASK = str(Path(sys.executable).parent / "dask")


@dataclass
class DaskProcesses:
    """A scheduler and its workers, each a separate OS process group."""

    folder: Path
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def scheduler_file(self) -> Path:
        return self.folder / "scheduler.json"

    @property
    def address(self) -> str:
        return json.loads(self.scheduler_file.read_text())["address"]

    def start_scheduler(self, timeout: float = 60) -> None:
        self.scheduler = subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self.scheduler_file.exists, timeout, "the dask scheduler's file", command=self.scheduler, interval=0.1)

    def start_worker(self, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        """A single-threaded worker process, in ``cwd`` (default: ours) as its working directory."""
        proc = subprocess.Popen(
            [
                DASK,
                "worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--death-timeout",
                "30",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, **(env or {})),
            cwd=cwd,
        )
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def idle(self) -> bool:
        """Whether no task is left on the scheduler nor on any worker, not even a cancelled one
        still running (a worker cannot stop a block midway; it finishes it)."""
        from distributed import Client

        with Client(self.address, timeout="30s") as client:  # lambdas travel by value, not by module name
            on_scheduler = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            on_workers = client.run(lambda dask_worker: len(dask_worker.state.tasks))
        return on_scheduler == 0 and not any(on_workers.values())

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the whole process group (nanny and worker)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                self.kill(proc)


S3_BUCKET = "cubes"


@contextlib.contextmanager
def loopback_s3() -> Iterator[dict[str, str]]:
    """A moto S3 server process on 127.0.0.1 with the bucket ``cubes``, and ``os.environ``
    pointed at it while the context lasts (yields the variables set)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        errors: list[Exception] = []

        def bucket_made() -> bool:
            try:
                s3fs.S3FileSystem(skip_instance_cache=True).mkdir(S3_BUCKET)
            except Exception as error:  # the server is not listening yet
                errors.append(error)
                return False
            return True

        def what() -> str:
            return f"the moto server to make bucket {S3_BUCKET} (last error: {errors[-1:]})"

        wait_for(bucket_made, 30, what, command=server, interval=0.2)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --------------------------------------------------------------------------- process starts

# Audit events (docs.python.org/3/library/audit_events.html) of everything that starts a
# process from this interpreter; multiprocessing's spawn and forkserver start theirs
# through ``multiprocessing.util.spawnv_passfds``, which raises no event, so that and
# ``Process.start`` are wrapped as well.
PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "os.exec", "pty.spawn"}
)


class ProcessStarts:
    """Every process this interpreter starts, in order, as one line each (what and how)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._installed = False
        self._saved: dict[str, object] = {}

    def install(self) -> None:
        """Start recording (for the rest of the interpreter's life: audit hooks stay)."""
        import multiprocessing.process
        import multiprocessing.util

        if self._installed:
            return
        self._installed = True
        sys.addaudithook(self._audit)
        spawnv_passfds = multiprocessing.util.spawnv_passfds
        start = multiprocessing.process.BaseProcess.start

        def recorded_spawnv_passfds(path, args, passfds):  # type: ignore[no-untyped-def]
            self.seen.append(f"multiprocessing spawn: {' '.join(map(str, args))[:200]}")
            return spawnv_passfds(path, args, passfds)

        def recorded_start(process):  # type: ignore[no-untyped-def]
            self.seen.append(f"multiprocessing Process.start: {process.name} ({type(process).__name__})")
            return start(process)

        self._saved = {"spawnv_passfds": spawnv_passfds, "start": start}
        multiprocessing.util.spawnv_passfds = recorded_spawnv_passfds
        multiprocessing.process.BaseProcess.start = recorded_start  # type: ignore[method-assign]

    def uninstall(self) -> None:
        """Stop wrapping multiprocessing (the audit hook stays but records nothing)."""
        import multiprocessing.process
        import multiprocessing.util

        if self._saved:
            multiprocessing.util.spawnv_passfds = self._saved["spawnv_passfds"]  # type: ignore[assignment]
            multiprocessing.process.BaseProcess.start = self._saved["start"]  # type: ignore[method-assign]
            self._saved = {}
        self._installed = False

    def _audit(self, event: str, args: tuple) -> None:
        if self._installed and event in PROCESS_EVENTS:
            self.seen.append(f"{event}: {' '.join(map(str, _argv(args)))[:200]}")

    def since(self, mark: int) -> list[str]:
        return self.seen[mark:]


def _argv(args: tuple) -> list[object]:
    """The command of a process-start audit event (its arguments differ by event)."""
    for arg in args:
        if isinstance(arg, (list, tuple)):
            return list(arg)
    return list(args)

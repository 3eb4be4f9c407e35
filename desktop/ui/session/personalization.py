"""The Personalize tab's model: adapter versions (list, switch, roll back, delete) and the training job.

Switching goes through `desktop.engine.adapters.activate` on the engine executor (the live model tries the
adapter before the registry records it). Training runs in its own low-priority process
(`personalize.job`); this object only starts it, steers it through its control file and polls its status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from storage.errors import KnownError

if TYPE_CHECKING:
    from desktop.engine import Engine
    from desktop.ui.session import ChatSession

JOB_POLL_MS = 1000  # the job's status file is a few hundred bytes; reading it each second costs nothing


class PersonalizationFeature(QObject):
    adapters_did_load = Signal(list)  # personalize.registry.AdapterRecord, `active` filled in
    adapter_did_activate = Signal(object)  # the adapter id the live model now uses, None: the base model
    adapter_did_fail = Signal(str)  # the adapter could not be applied; the chat keeps the one it had
    personalize_did_start = Signal(int)  # the background job's process id
    personalize_did_progress = Signal(object)  # personalize.job status: state, step, loss, tokens/s, ETA
    personalize_did_finish = Signal(object)  # the job's last status (activated, kept, paused, failed...)

    def __init__(self, session: ChatSession) -> None:
        super().__init__(session)
        self._session = session
        self.job_config: str | None = None  # TrainConfig fields as JSON for the background job (tests)
        self.job_running = False
        self._job_pid: int | None = None  # spawned by this window, until its status file says so itself
        self._job_poll = QTimer(self)
        self._job_poll.setInterval(JOB_POLL_MS)
        self._job_poll.timeout.connect(self.poll)

    # -- adapters -------------------------------------------------------------------------------------

    def apply(self, engine: Engine) -> None:
        """On the engine executor: make the live model match the registry. A damaged adapter costs only
        itself: the chat keeps what it had and the window says why."""
        s = self._session
        try:
            engine.sync_adapter(s.store_proxy())
        except KnownError as exc:
            s.engine_worker.emit(self.adapter_did_fail.emit, str(exc))
        s.engine_worker.emit(self.adapter_did_activate.emit, engine.adapter_id)

    def load(self) -> None:
        s = self._session

        def task() -> list[Any]:
            from personalize.registry import Registry

            return Registry(s.store()).list()

        s.store_worker.submit(task, on_done=self.adapters_did_load.emit, on_error=s.fail)

    def sync(self) -> None:
        """Apply the registry's active adapter to the loaded model (after a job or a registry change)."""
        s = self._session
        if s.services.engine_loaded:
            s.engine_worker.submit(lambda: self.apply(s.services.engine()))

    def activate(self, adapter_id: str | None) -> None:
        """Switch the chat to an adapter version (None: the base model); a corrupt or foreign adapter is
        refused before the registry records it as active."""
        s = self._session

        def task() -> None:
            from desktop.engine import adapters

            engine = s.services.engine() if s.services.engine_loaded else None
            adapters.activate(engine, s.store_proxy(), adapter_id)

        def done(_: Any) -> None:
            self.adapter_did_activate.emit(adapter_id)
            s.action_did_succeed.emit(
                f"Adapter {adapter_id} is active" if adapter_id else "Adapters off: chatting with the base model"
            )
            self.load()

        s.engine_worker.submit(task, on_done=done, on_error=self._failed)

    def rollback(self) -> None:
        """Back to the adapter that was active before the last switch (or the base model)."""
        s = self._session

        def task() -> str | None:
            from personalize.registry import Registry

            return Registry(s.store()).rollback()

        def done(previous: str | None) -> None:
            s.action_did_succeed.emit(
                f"Rolled back to adapter {previous}" if previous else "Rolled back to the base model"
            )
            self.load()
            self.sync()

        s.store_worker.submit(task, on_done=done, on_error=s.fail)

    def delete(self, adapter_id: str) -> None:
        s = self._session

        def task() -> None:
            from personalize.registry import Registry

            Registry(s.store()).delete(adapter_id)

        def done(_: Any) -> None:
            s.action_did_succeed.emit(f"Deleted adapter {adapter_id}")
            self.load()
            self.sync()  # turns the model back to the base when the deleted one was active

        s.store_worker.submit(task, on_done=done, on_error=s.fail)

    def _failed(self, message: str) -> None:
        self.adapter_did_fail.emit(message)
        self.load()

    # -- the training job -----------------------------------------------------------------------------

    def start(self, passphrase: str | None = None) -> None:
        """Start (or resume: the job continues from its checkpoint) training in its own low-priority
        process. `passphrase` reaches it through a pipe; None: the child finds the key as this process did
        (keychain, or HEARTH_PASSPHRASE)."""
        from personalize import job

        s = self._session
        if not s.store_ready:
            return
        model = s.engine.path if s.engine is not None else s.services.chat_model_path()
        try:
            pid = job.spawn(passphrase=passphrase, gguf=model, config=self.job_config)
        except KnownError as exc:
            s.fail(str(exc))
            return
        except OSError as exc:
            s.fail(f"could not start the personalization process ({exc.strerror or type(exc).__name__})")
            return
        self.job_running = True
        self._job_pid = pid
        self.personalize_did_start.emit(pid)
        self.poll()  # shows "starting" now, and starts the timer

    def pause(self) -> None:
        from personalize import job

        if job.running() is not None:
            job.request("pause")
            self._session.action_did_succeed.emit("Pausing: Hearth saves its progress, then stops learning")

    def cancel(self) -> None:
        """Stop the running job and drop its checkpoint; when paused, just drop the checkpoint."""
        s = self._session

        def task() -> str:
            from personalize import job

            return job.cancel(s.store)

        def done(outcome: str) -> None:
            if outcome == "requested":
                s.action_did_succeed.emit("Cancelling personalization")
            else:
                self.poll()

        s.store_worker.submit(task, on_done=done, on_error=s.fail)

    def poll(self) -> dict[str, Any]:
        """Read the job's status file (on the GUI thread: a tiny file) and report it; called by a timer."""
        from personalize import job

        status = job.read_status()
        if self._job_pid is not None and status.get("pid") != self._job_pid:
            # The child has not written its first status yet (Python and the store are still starting).
            if job.alive(self._job_pid):
                status = {"state": "starting", "pid": self._job_pid, "alive": True}
            else:
                status = {
                    "state": "failed",
                    "alive": False,
                    "error": "the personalization process stopped before it started (see personalize.log)",
                }
                self._job_pid = None
        elif self._job_pid is not None:
            self._job_pid = None
        live = bool(status.get("alive")) and status.get("state") in job.LIVE_STATES
        finished = not live and self.job_running
        self.job_running = live
        if live and not self._job_poll.isActive():
            self._job_poll.start()
        self.personalize_did_progress.emit(status)
        if finished:
            self._job_poll.stop()
            self.personalize_did_finish.emit(status)
            self.load()
            self.sync()  # a new adapter the job activated serves the very next reply
        elif not live:
            self._job_poll.stop()
        return status

    def close(self) -> None:
        self._job_poll.stop()  # the training process lives on; the next window picks it up

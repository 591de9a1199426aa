"""The one way operators report: a status line the panel shows, and Blender's report."""

from __future__ import annotations

from typing import Any

from .._typing import OpResult


def fail(op: Any, exc: BaseException | str, owner: Any = None, attr: str = "status",
         prefix: str = "Error: ") -> OpResult:
    """Report an error (and keep it in ``owner.<attr>`` for the panel); the operator is CANCELLED."""
    text = str(exc)
    if owner is not None:
        setattr(owner, attr, f"{prefix}{text}")
    op.report({"ERROR"}, text)
    return {"CANCELLED"}


def outcome(op: Any, props: Any, job: Any) -> OpResult:
    """Report how a job ended. FINISHED whenever keys were written, so one undo step covers the run.

    A warning the operator gave on the way (``op.warning``: no sound strip, say) stays on the status line.
    """
    state = job.driver.state if job.driver is not None else ""
    warning = getattr(op, "warning", "")
    props.status = job.status_text() + (f". {warning}" if warning and state != "error" else "")
    op.report({"ERROR"} if state == "error" else {"INFO"}, props.status)
    return {"FINISHED"} if job.written or state in ("done", "stopped") else {"CANCELLED"}

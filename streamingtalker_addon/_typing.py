"""Type aliases for the bpy glue (checked with fake-bpy-module; no runtime cost)."""

from typing import Literal

#: What operator callbacks return.
OpResult = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]

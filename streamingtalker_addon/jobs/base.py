"""What generation and live jobs share: a target mesh bound to the model's channels.

When the server is up, the driver hands the job the model card (:meth:`BoundJob.on_ready`).
The job binds the mesh's shape keys by name; a vertex-space model on a mesh without
its keys instead asks the server for the basis (the driver's *preparing* state, so
nothing waits on the main thread) and creates one key per component, mapped into
the mesh's frame by the same similarity fit as *Bind vertex-space model*.
"""

from __future__ import annotations

from typing import Any

from ..blender.shape_keys import rest_positions, write_shape_keys
from ..client.core import Message, Msg
from ..client.driver import LiveDriver, Prepare, StreamingDriver
from ..client.runtime import RuntimeSettings
from ..logic import binding
from ..logic.vertex_basis import basis_from_message, basis_keys
from ..state import AddonState
from .inputs import InputError, expected_card, precheck_target, resolve_binding, scene_fps


class BoundJob:
    kind = "job"
    driver: StreamingDriver | LiveDriver

    def __init__(self, state: AddonState, scene: Any, obj: Any, settings: RuntimeSettings):
        self.state, self.scene, self.obj, self.settings = state, scene, obj, settings
        self.fps = scene_fps(scene)
        self.binding: binding.Binding | None = None
        precheck_target(obj, expected_card(state, settings))  # refuse a bad mesh before starting anything

    # -- driver callbacks ------------------------------------------------------
    def on_ready(self, card: dict[str, Any]) -> Prepare | None:
        self.state.card = dict(card)
        channels = list(card.get("channels", []))
        space = card.get("channel_space", "arkit")
        try:
            self.binding = resolve_binding(self.obj, channels, space)
        except InputError:
            if space != "vertex":
                raise
            return Prepare(Msg.GET_BASIS, Msg.BASIS, self._on_basis)
        self.bound(card)
        return None

    def _on_basis(self, msg: Message) -> None:
        """Vertex-space model on a mesh of its topology: one shape key per basis component."""
        card = self.state.card
        k, v = int(msg.get("components")), int(msg.get("vertices"))
        if len(self.obj.data.vertices) != v:
            raise InputError(binding.refusal_message(self.obj.name, 0, "vertex", len(self.obj.data.vertices), v))
        basis, template = basis_from_message(msg.payload, k, v)
        channels = list(card["channels"])
        keys, _ = basis_keys(basis, template, channels, rest_positions(self.obj))
        write_shape_keys(self.obj, keys)
        self.binding = resolve_binding(self.obj, channels, "vertex")
        self.bound(card)

    def bound(self, card: dict[str, Any]) -> None:
        """The mesh is bound (``self.binding``): set up the writing side."""

    # -- stepping --------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.driver.active)

    def step(self, budget: float = 0.02) -> bool:
        active = bool(self.driver.step(budget))
        if not active:
            self.finish()
        return active

    def finish(self) -> int:
        raise NotImplementedError

    def _release(self) -> None:
        if self.state.job is self:
            self.state.job = None

"""Pure logic of the add-on, with no bpy: numpy and the stdlib only, tested without Blender.

* :mod:`.binding` — which model channel drives which shape key (name maps, linear maps).
* :mod:`.retarget`, :mod:`.presets` — retarget presets: the engine, detection and file format;
  the built-in presets (ARKit, ARKit spelled otherwise, CC4/iClone, Ready Player Me, VRoid/VRM).
* :mod:`.highlights` — the frames of a take that show it best (the demo's contact sheet).
* :mod:`.framerate` — streamed model frames resampled to the scene's frame rate.
* :mod:`.audio_checks` — is decoded audio usable (empty, silent, NaN, too short)?
* :mod:`.vertex_basis` — a vertex-space model's basis read from its file, and the
  shape keys it gives on a mesh, mapped into the mesh's frame by a similarity fit.
"""

"""The bpy glue: everything that reads or writes Blender data, and nothing that decides.

* :mod:`.keyframes` — bulk keyframe writer into layered actions (Blender 5) or
  ``action.fcurves`` (4.2–4.3), O(chunk) appends; the one reader of an action's curves
  for a slot (:func:`.keyframes.slot_fcurves`), which the takes reuse.
* :mod:`.takes` — a written take kept as an animator wants it: named after the audio, on
  the NLA, thinned with Blender's own decimation (plain functions, for headless use too).
* :mod:`.shape_keys` — the one shape-key writer (demo head, FLAME, vertex bases).
* :mod:`.strips` — the one Blender 4/5 sequencer-strips shim.
* :mod:`.audio` — decoding with Blender's ``aud`` (validation is :mod:`..logic.audio_checks`).
* :mod:`.fbx_export` — FBX with settings whose shape-key animation survives a round trip.
* :mod:`.preview`, :mod:`.camera` — headless preview render with the speech muxed in, contact sheets.
* :mod:`.preset_files` — the user's retarget presets (JSON) in the extension's user folder.
* :mod:`.user_data` — the writable per-user folder.

Imports only ``client`` and ``logic``; the jobs and the UI build on it.
"""

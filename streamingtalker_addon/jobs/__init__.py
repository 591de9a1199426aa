"""Jobs: the bpy side of a streaming session, stepped on Blender's main thread.

A job owns a driver (:mod:`..client.driver`, no bpy) and writes what it gets into
Blender: keyframes (:class:`.generation.GenerationJob`), live shape-key values
(:class:`.live.LiveJob`), generation just ahead of the playhead
(:class:`.follow.FollowController`). A modal operator's timer steps it in the UI; a
plain loop steps it in background mode. Jobs take plain values (audio choice,
runtime settings, options) and the :class:`~..state.AddonState`; they never import
the UI.
"""

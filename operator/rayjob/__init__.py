"""The RayJob controller's decision layer: pure lifecycle (`state`) and post-finish deletion (`deletion`).

Nothing in this package does I/O; a thin reconciler observes the world, calls `next_state`, writes the
returned status and executes the returned actions in order.
"""

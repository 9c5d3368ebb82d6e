"""The RayCluster controller: pure decisions and the thin reconciler that applies them.

- `plan.py`: what to create and delete this pass (`plan_cluster`), and the suspend phase.
- `status.py`: the new `.status`, whether it is worth writing now (throttling), the spec-valid condition.
- `deletion.py`: the GCS-FT Redis cleanup finalizer plan for a cluster being deleted.
- `reconciler.py`: one pass per key: read the caches into a `Pass` context, call the pure functions,
  hand their actions to the one `Applier` (`applier.py`); `reconciler_deletion.py` does the same for the
  deletion plan (Redis cleanup finalizer).
- `assembly.py`: informers, handlers, controller and leader election wired together.

RayJob and RayService controllers get sibling packages (`ray_operator.rayjob`, `ray_operator.rayservice`)
built the same way from the shared builders, schedulers and runtime.
"""

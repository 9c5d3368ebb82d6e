"""The RayService controller: pure decisions (`plan`, `serving`, `upgrade`, `incremental`, `conditions`),
the applier, the reconciler and its assembly."""

"""The RayJob controller: pure decisions (`state`, `deletion`, `readers`, `submitter`, `statusbody`) and the
thin parts that act on them (`reconciler` observes and decides, `applier` writes, `dashboard` talks to Ray,
`assembly` wires it into the operator process). See docs/rayjob-lifecycle.md and docs/operator.md.
"""

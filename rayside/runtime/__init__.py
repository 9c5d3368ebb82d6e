"""The one controller runtime every rayside process shares: the operator, localkube's built-in controllers
and the kubelet.

- :mod:`rayside.runtime.informer`: a list+watch cache of one collection (:class:`Informer`), with pluggable
  indexes, and a read-only view over several of them (:class:`InformerGroup`);
- :mod:`rayside.runtime.workqueue`: a de-duplicating, delaying, rate-limiting queue of keys;
- :mod:`rayside.runtime.controller`: worker threads that take keys from a queue and reconcile them;
- :mod:`rayside.runtime.background`: a lazily started background thread working a bounded queue.

Nothing here knows about Ray or about a particular kind: callers plug in handlers, indexers and reconcile
functions.
"""

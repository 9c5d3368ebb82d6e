"""The operator's controller runtime: informer caches, a work queue, worker threads, scale expectations,
leader election and Events. It knows nothing about Ray; reconcilers plug into it.
"""

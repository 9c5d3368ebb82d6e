"""The `rayside` command: dispatches a sub-command to the component that implements it.

Sub-commands are resolved lazily (module path + function) so that `rayside submit` works in an image that
has only the `submitter` extra installed. A component that is not installed gives a one-line error and
exit code 2 instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

# (words, module, function, one-line help). The longest matching word sequence wins.
COMMANDS: list[tuple[tuple[str, ...], str, str, str]] = [
    (("up",), "rayside.up.cli", "main", "run KubeRay YAML (RayJob, RayCluster, ...) here with real Ray"),
    (("status",), "rayside.up.keep", "status_main", "what `rayside up --keep` runs, and its kubeconfig"),
    (("down",), "rayside.up.keep", "down_main", "stop `rayside up --keep` and clean up"),
    (("submit",), "rayside.cli", "submit_main", "submit a Ray job and follow its logs (no Ray needed)"),
    (("localkube", "serve"), "localkube.cli", "main", "run a local Kubernetes API server + kubelet"),
    (("localkube", "kubelet"), "localkube.kubelet.cli", "main", "run localkube's kubelet as its own process"),
    (("operator",), "ray_operator.cli", "main", "run the ray.io/v1 operator"),
    (("get", "token"), "ray_operator.cli", "get_token_main", "print a RayCluster's Ray auth token"),
    (("crds",), "ray_operator.crdgen", "main", "regenerate the CRD YAML from the models"),
]

EXIT_USAGE = 2


def _usage() -> str:
    lines = ["usage: rayside <command> [args...]", "", "commands:"]
    for words, _mod, _fn, text in COMMANDS:
        lines.append(f"  {' '.join(words):<18} {text}")
    return "\n".join(lines)


def resolve(argv: Sequence[str]) -> tuple[tuple[str, ...], str, str] | None:
    """Return (words, module, function) of the longest command that prefixes argv."""
    best: tuple[tuple[str, ...], str, str] | None = None
    for words, mod, fn, _text in COMMANDS:
        if tuple(argv[: len(words)]) == words and (best is None or len(words) > len(best[0])):
            best = (words, mod, fn)
    return best


def submit_main(argv: list[str]) -> int:
    """`rayside submit`: the submitter, making a submission id (as `ray job submit` does) when the user gives
    neither --submission-id nor RAY_JOB_SUBMISSION_ID (pods always get one from the operator)."""
    from submitter.cli import main as submit
    from submitter.settings import new_submission_id

    flags = argv[: argv.index("--")] if "--" in argv else argv
    given = any(a == "--submission-id" or a.startswith("--submission-id=") for a in flags)
    if not given and not os.environ.get("RAY_JOB_SUBMISSION_ID") and not {"-h", "--help"} & set(flags):
        os.environ["RAY_JOB_SUBMISSION_ID"] = new_submission_id()
    return submit(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from rayside import __version__

        print(__version__)
        return 0
    found = resolve(args)
    if found is None:
        print(f"rayside: unknown command {' '.join(args[:2])!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    words, mod, fn = found
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        print(
            f"rayside: '{' '.join(words)}' is not available in this installation ({exc.name} is missing); "
            "install the matching extra, e.g. pip install 'rayside[dev]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    entry: Callable[[list[str]], int] = getattr(module, fn)
    return int(entry(args[len(words) :]) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

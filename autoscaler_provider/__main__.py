"""``python -m autoscaler_provider --cluster-name N --cluster-namespace NS``: run Ray's autoscaler monitor
for one RayCluster with this package's provider (the replacement for ``ray kuberay-autoscaler``).

It reads the RayCluster once (so a missing cluster or a config Ray could not use fails at once, with one
line), waits until the Ray head answers a health check, then starts Ray's v2 ``AutoscalerMonitor`` or v1
``Monitor``: ``spec.autoscalerOptions.version`` picks one, else the flag the head stored in the GCS.
Exit status: 2 for usage errors, 1 when the cluster cannot be read or configured.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from autoscaler_provider.config import ConfigError, derive_autoscaling_config
from autoscaler_provider.scaler import Scaler
from rayside.kubeclient import KubeClient, NotFound

log = logging.getLogger("autoscaler_provider")
HEALTH_BACKOFF_S = 5.0
# Ray allows 10 instances REQUESTED at once (meant to spare cloud APIs); here a launch of any size is one
# patch of `replicas`, and 10 would make a 1,000-worker scale-up take 100 updates. A set value is kept.
CONCURRENT_LAUNCHES = ("AUTOSCALER_MAX_CONCURRENT_LAUNCHES", "1000")
V1_PROVIDER = "autoscaler_provider.provider.RaysideNodeProvider"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m autoscaler_provider", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-name", required=True, help="RayCluster name")
    parser.add_argument("--cluster-namespace", required=True, help="RayCluster namespace")
    parser.add_argument("--gcs-address", default="", help="Ray GCS host:port (default <this node's IP>:6379)")
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: $KUBECONFIG, in-cluster)"
    )
    args = parser.parse_args(list(argv))
    for flag in ("cluster_name", "cluster_namespace"):
        if not getattr(args, flag).strip():
            parser.error(f"--{flag.replace('_', '-')} must not be empty")
    return args


def main(
    argv: Sequence[str] | None = None, *, run: Callable[[Scaler, argparse.Namespace, str], None] | None = None
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault(*CONCURRENT_LAUNCHES)  # read when Ray's autoscaler constants are imported
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = f"RayCluster {args.cluster_namespace}/{args.cluster_name}"
    try:
        client = KubeClient.from_config(kubeconfig=args.kubeconfig)
        scaler = Scaler(client, args.cluster_name, args.cluster_namespace)
        raycluster = scaler.refresh().raycluster
        derive_autoscaling_config(raycluster)
    except NotFound:
        return _fail(f"{where} not found")
    except ConfigError as exc:
        return _fail(f"{where} cannot be autoscaled: {exc}")
    except Exception as exc:  # kubeconfig, transport, API: one line, no traceback
        text = str(exc).strip().splitlines()
        return _fail(f"{where} cannot be read: {text[0] if text else type(exc).__name__}")
    version = str((raycluster.get("spec") or {}).get("autoscalerOptions", {}).get("version") or "")
    (run or start_monitor)(scaler, args, version)
    return 0


def _fail(message: str) -> int:
    print(f"autoscaler_provider: error: {message}", file=sys.stderr)
    return 1


def start_monitor(scaler: Scaler, args: argparse.Namespace, version: str) -> None:
    """Wait for the head, then run Ray's monitor with this package's provider (blocks)."""
    from ray._common.network_utils import build_address
    from ray._private.services import canonicalize_bootstrap_address_or_die, get_node_ip_address
    from ray._raylet import GcsClient  # type: ignore[attr-defined]
    from ray.autoscaler.v2.utils import is_autoscaler_v2

    address = canonicalize_bootstrap_address_or_die(
        args.gcs_address or build_address(get_node_ip_address(), 6379)
    )
    wait_for_head(address)
    gcs_client = GcsClient(address)
    v2 = version == "v2" or (
        version != "v1" and is_autoscaler_v2(fetch_from_server=True, gcs_client=gcs_client)
    )
    log.info("%s/%s: starting autoscaler %s", scaler.namespace, scaler.name, "v2" if v2 else "v1")
    if v2:
        _run_v2(scaler, gcs_client, get_node_ip_address())
    else:
        _run_v1(scaler, gcs_client, get_node_ip_address(), args.kubeconfig)


def wait_for_head(address: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll ``ray health-check`` until the head's GCS answers."""
    command = ["ray", "health-check", "--address", address, "--skip-version-check"]
    while subprocess.run(command, check=False, capture_output=True).returncode != 0:
        log.info("the Ray head at %s is not ready; checking again in %.0f s", address, HEALTH_BACKOFF_S)
        sleep(HEALTH_BACKOFF_S)


def _run_v2(scaler: Scaler, gcs_client: Any, monitor_ip: str) -> None:
    from ray.autoscaler.v2 import monitor as v2_monitor

    from autoscaler_provider.provider import RaysideCloudProvider, RaysideConfigReader, gcs_busy_nodes

    scaler.set_busy_nodes(gcs_busy_nodes(gcs_client))
    base = v2_monitor.Autoscaler

    class RaysideAutoscaler(base):  # type: ignore[misc,valid-type]
        """Ray's v2 autoscaler with this package's cloud provider instead of the built-in KubeRay one."""

        def _init_cloud_instance_provider(self, config: Any, config_reader: Any) -> None:
            self._cloud_instance_provider = RaysideCloudProvider(scaler)

        def update_autoscaling_state(self) -> Any:
            state = super().update_autoscaling_state()
            self._cloud_instance_provider.flush()  # the update's one patch, right after it decided
            return state

    # AutoscalerMonitor builds its Autoscaler from this module attribute; there is no other hook.
    v2_monitor.Autoscaler = RaysideAutoscaler
    v2_monitor.AutoscalerMonitor(
        address=gcs_client.address, config_reader=RaysideConfigReader(scaler), monitor_ip=monitor_ip
    ).run()


def v1_config(scaler: Scaler, kubeconfig: str | None = None) -> Callable[[], dict[str, Any]]:
    """The v1 config producer: the derived config with this package's v1 provider as an external one."""

    def produce() -> dict[str, Any]:
        config = derive_autoscaling_config(scaler.refresh().raycluster)
        config["provider"].update(type="external", module=V1_PROVIDER)
        if kubeconfig:
            config["provider"]["kubeconfig"] = kubeconfig
        return config

    return produce


def _run_v1(scaler: Scaler, gcs_client: Any, monitor_ip: str, kubeconfig: str | None) -> None:
    from ray.autoscaler._private.monitor import Monitor

    producer = v1_config(scaler, kubeconfig)
    Monitor(
        address=gcs_client.address, autoscaling_config=producer, monitor_ip=monitor_ip, retry_on_failure=False
    ).run()


if __name__ == "__main__":
    sys.exit(main())

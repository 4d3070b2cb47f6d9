"""`python -m kubesim --port P [--ready-delay S] [--token T] [--state FILE] [--kubeconfig PATH]`.

Starts the emulator on loopback, writes a kubeconfig for it and prints the kubeconfig's path.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn

from kubesim.kubeconfig import write_kubeconfig
from kubesim.server import Kubesim, Settings, create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim", description="Kubernetes API emulator (simulation)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free port)")
    parser.add_argument("--ready-delay", type=float, default=0.2, help="seconds before a pod is Ready (jittered)")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--state", type=Path, default=None, help="JSON file that keeps state across restarts")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="where to write the kubeconfig")
    parser.add_argument("--seed", type=int, default=None, help="seed for readiness jitter and names")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    # Listen before announcing the kubeconfig, so clients that read it at once queue instead of failing.
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://{args.host}:{port}"
    sim = Kubesim(Settings(ready_delay=args.ready_delay, token=args.token, state_file=args.state, seed=args.seed))
    sim.address = f"{args.host}:{port}"
    kubeconfig_path = args.kubeconfig
    if kubeconfig_path is None:
        base = args.state.parent if args.state else Path(tempfile.gettempdir())
        kubeconfig_path = base / f"kubesim-{port}.kubeconfig"
    write_kubeconfig(kubeconfig_path, url, args.token)
    print(f"kubesim (a simulated Kubernetes API, not a real cluster) listening on {url}", flush=True)
    print(f"kubeconfig: {kubeconfig_path}", flush=True)
    config = uvicorn.Config(create_app(sim), log_level=args.log_level, access_log=False,
                            timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
    sys.exit(0)

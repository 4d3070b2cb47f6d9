"""The CLI's view of the gateway: small HTTP calls with errors turned into exit codes."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

EXIT_OK = 0
EXIT_PIPELINE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


class CliError(Exception):
    """Raised anywhere in a command; the entry point (workers/cli.py `run_cli`) prints it to stderr
    and exits with `exit_code` (2 bad input by default, 3 unreachable), without a traceback.

    Not a click.ClickException: typer 0.29 vendors its own click and catches only that private
    class, and its rich error panel would wrap long messages across box lines.
    """

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def show(self) -> None:
        Console(stderr=True).print(f"[red]error:[/red] {escape(self.message)}", highlight=False)


class GatewayClient:
    def __init__(self, base_url: str, user: str | None = None, timeout: float = 30.0, token: str | None = None) -> None:
        headers = {"X-Gennaker-User": user} if user else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the Gennaker gateway at {self.base_url} ({exc}); is `gennaker dev` running? "
                "Set --api or GENNAKER_API_URL.",
                EXIT_UNAVAILABLE,
            ) from None
        if response.status_code >= 400:
            raise CliError(_error_text(response), EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_BAD_INPUT)
        return response.json() if response.content else None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    problems = error.get("errors") or []
    if len(problems) > 1:  # one per line rather than the joined message
        return f"{len(problems)} problems (HTTP {response.status_code}):\n" + "\n".join(
            f"  {item['field']}: {item['message']}" for item in problems
        )
    return f"{error.get('message', response.reason_phrase)} (HTTP {response.status_code})"

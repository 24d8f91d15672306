"""A small client for a marvel endpoint (local, or anything speaking the same protocol):

from marvel.serving.client import Client
client = Client("http://127.0.0.1:8080")
client.predict([{"Height": 1.88, "Weight": 90.0, ...}])   # -> {"predictions": {...}, "variant": "A"}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import requests

DEFAULT_ENDPOINT = "marvel-character-model-serving"


class ServingError(RuntimeError):
    """The endpoint refused or failed a request; `status` and the JSON `body` say why."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def _clean(value: Any) -> Any:
    """NaN is not JSON: a missing value (pandas NaN/NaT/None) is sent as null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _records(records: Any) -> list[dict[str, Any]]:
    if hasattr(records, "to_dict"):  # a pandas DataFrame
        records = records.to_dict(orient="records")
    if isinstance(records, Mapping):
        records = [records]
    return [{k: _clean(v) for k, v in r.items()} for r in records]


class Client:
    """Scores character records against an endpoint.

    `url` is the endpoint's base URL (``http://127.0.0.1:8080``) or a full invocations URL. The token, if
    the endpoint needs one, comes from `token` (or set MARVEL_SERVING_TOKEN for `from_env`).
    """

    def __init__(
        self, url: str, token: str | None = None, endpoint_name: str = DEFAULT_ENDPOINT, timeout: float = 30.0
    ) -> None:
        url = url.rstrip("/")
        if url.endswith("/invocations"):  # a full scoring URL, MLflow's or Databricks'
            self.invocations_url = url
            base, _, rest = url.removesuffix("/invocations").partition("/serving-endpoints/")
            self.base_url, endpoint_name = base, rest or endpoint_name
        else:
            self.base_url = url
            self.invocations_url = f"{url}/serving-endpoints/{endpoint_name}/invocations"
        self.endpoint_name = endpoint_name
        self.timeout = timeout
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def predict(
        self,
        records: Mapping[str, Any] | Iterable[Mapping[str, Any]] | Any,
        return_probabilities: bool = False,
        client_request_id: str | None = None,
        request_time_ms: int | None = None,
    ) -> dict[str, Any]:
        """Score one record (a dict), a list of records or a DataFrame; returns the endpoint's JSON answer.

        `request_time_ms` sends X-Marvel-Request-Time (honoured only by endpoints with
        ``deploy.accept_request_time: true``, for replayed or simulated traffic).
        """
        body: dict[str, Any] = {"dataframe_records": _records(records)}
        if return_probabilities:
            body["params"] = {"return_probabilities": True}
        if client_request_id is not None:
            body["client_request_id"] = client_request_id
        headers = {"X-Marvel-Request-Time": str(int(request_time_ms))} if request_time_ms is not None else {}
        response = self._session.post(self.invocations_url, json=body, headers=headers, timeout=self.timeout)
        return self._answer(response)

    def ping(self) -> bool:
        try:
            return self._session.get(f"{self.base_url}/ping", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def describe(self) -> dict[str, Any]:
        """The endpoint's description (served models and versions, traffic split, request counts)."""
        url = f"{self.base_url}/serving-endpoints/{self.endpoint_name}"
        return self._answer(self._session.get(url, timeout=self.timeout))

    def close(self) -> None:
        self._session.close()

    @staticmethod
    def _answer(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ServingError(response.status_code, body)
        return body

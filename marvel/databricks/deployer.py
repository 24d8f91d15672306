"""`deploy=databricks`: a Databricks Model Serving endpoint for registered models, with an A/B traffic split and
an inference table in Unity Catalog.

The deploy config has the same shape as the local deployer's (``endpoint_name``, ``variants``,
``inference_table``), so switching between a laptop and a workspace is one override. Every variant becomes
one served entity named after the variant; ``traffic_config`` routes each variant's share to it. The
AI gateway writes every request and response to ``<catalog>.<schema>.<inference_table>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    EndpointCoreConfigInput,
    Route,
    ServedEntityInput,
    TrafficConfig,
)

from marvel.core.errors import MarvelError
from marvel.core.registry import resolve_version
from marvel.core.variants import Variant, check_distinct, validate_variants
from marvel.training.pyfunc import SERVED_MODEL_ENV

log = logging.getLogger(__name__)

PAYLOAD_SUFFIX = "_payload"  # the AI gateway names the table <prefix>_payload


@dataclass
class DatabricksEndpoint:
    """What `deploy` returns; `describe()` has the local endpoint's shape, so the deploy stage treats both alike."""

    name: str
    host: str
    state: str
    variants: list[Variant]
    versions: dict[str, str]
    inference_table: str
    running: bool = True  # the workspace keeps serving after this process exits

    @property
    def url(self) -> str:
        return f"{self.host.rstrip('/')}/serving-endpoints/{self.name}"

    @property
    def invocations_url(self) -> str:
        return f"{self.url}/invocations"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": {"ready": self.state},
            "url": self.url,
            "invocations_url": self.invocations_url,
            "auth": "databricks",
            "served_entities": [
                {
                    "variant": v.name,
                    "entity_name": v.model,
                    "entity_version": self.versions[v.name],
                    "alias": v.alias,
                    "flavor": "pyfunc",
                    "traffic_percentage": int(v.traffic_percentage),
                }
                for v in self.variants
            ],
            "inference_table": {"name": self.inference_table, "uri": self.inference_table},
            # requests are counted by Databricks (the inference table), not by this process
            "stats": {"requests": 0, "by_status": {}, "rows_written": 0},
        }


class DatabricksDeployer:
    """Create or update the serving endpoint, wait until it is ready, report its URL."""

    def __init__(
        self,
        endpoint_name: str,
        variants: Sequence[Mapping[str, Any]],
        catalog: str,
        schema: str,
        inference_table: str = "custom_model_payload",
        workload_size: str = "Small",
        scale_to_zero: bool = True,
        timeout_minutes: float = 30,
        registry_uri: str = "databricks-uc",
    ) -> None:
        self.endpoint_name = endpoint_name
        self.variants = validate_variants(variants)
        self.catalog = catalog
        self.schema = schema
        self.inference_table = inference_table
        self.workload_size = workload_size
        self.scale_to_zero = bool(scale_to_zero)
        self.timeout = timedelta(minutes=float(timeout_minutes))
        self.registry_uri = registry_uri

    # -- what to serve ------------------------------------------------------------------------------------
    def resolve_version(self, variant: Variant) -> str:
        """A pinned version as given, else the version the variant's alias points at in the registry."""
        if variant.version is not None:
            return str(variant.version)
        return str(resolve_version(variant, self.registry_uri).version)

    def endpoint_config(self, versions: Mapping[str, str]) -> tuple[list[Any], Any]:
        """(served entities, traffic config) for the resolved variant versions."""
        entities = [
            ServedEntityInput(
                name=v.name,
                entity_name=v.model,
                entity_version=versions[v.name],
                workload_size=self.workload_size,
                scale_to_zero_enabled=self.scale_to_zero,
                # the model reports this in every answer: the inference table's served_entity_id cannot be
                # resolved to a model and version from the endpoint's config (which shows no entity ids)
                environment_vars={SERVED_MODEL_ENV: f"{v.model}/{versions[v.name]}"},
            )
            for v in self.variants
        ]
        traffic = TrafficConfig(
            routes=[
                Route(served_model_name=v.name, traffic_percentage=int(v.traffic_percentage))
                for v in self.variants
            ]
        )
        return entities, traffic

    def inference_table_config(self) -> AiGatewayInferenceTableConfig:
        prefix = self.inference_table.removesuffix(PAYLOAD_SUFFIX)
        return AiGatewayInferenceTableConfig(
            catalog_name=self.catalog, schema_name=self.schema, table_name_prefix=prefix, enabled=True
        )

    def ai_gateway(self) -> Any:
        return AiGatewayConfig(inference_table_config=self.inference_table_config())

    def update_gateway(self, api: Any, current: AiGatewayConfig | None) -> bool:
        """Point the gateway's inference table at ours, keeping everything else it has (rate limits, usage
        tracking, guardrails): ``put_ai_gateway`` replaces the whole gateway config, so it is sent back whole.
        An enabled table cannot move: it is disabled first. Returns whether anything was sent."""
        current = current or AiGatewayConfig()
        wanted = self.inference_table_config()
        table = current.inference_table_config
        if _table_key(table) == _table_key(wanted):
            return False

        def put(inference_table: AiGatewayInferenceTableConfig) -> None:
            api.put_ai_gateway(
                self.endpoint_name,
                fallback_config=current.fallback_config,
                guardrails=current.guardrails,
                inference_table_config=inference_table,
                rate_limits=current.rate_limits,
                usage_tracking_config=current.usage_tracking_config,
            )

        if table is not None and table.enabled and _table_key(table)[:3] != _table_key(wanted)[:3]:
            log.info("disabling the inference table %s before moving it", _table_key(table)[:3])
            put(replace(table, enabled=False))
        put(wanted)
        return True

    # -- deploy ---------------------------------------------------------------------------------------------
    def deploy(self, ctx: Any = None, client: Any | None = None) -> DatabricksEndpoint:
        """Create the endpoint, or update its served versions and traffic; wait until it is ready.

        `ctx` (the run context) is accepted for the deploy stage's contract; a `client` may be passed in
        (tests), else the SDK's default auth (env vars, profile, or the job's own identity) is used."""
        w = client or WorkspaceClient()
        versions = {v.name: self.resolve_version(v) for v in self.variants}
        check_distinct(self.variants, versions)
        entities, traffic = self.endpoint_config(versions)
        gateway = self.ai_gateway()
        api = w.serving_endpoints
        try:
            current = api.get(self.endpoint_name)
        except NotFound:
            current = None
        if current is None:
            log.info("creating serving endpoint %s", self.endpoint_name)

            done = api.create_and_wait(
                name=self.endpoint_name,
                config=EndpointCoreConfigInput(
                    name=self.endpoint_name, served_entities=entities, traffic_config=traffic
                ),
                ai_gateway=gateway,
                timeout=self.timeout,
            )
        else:
            log.info("updating serving endpoint %s", self.endpoint_name)
            if (
                current.state is not None
                and str(getattr(current.state.config_update, "value", "")) == "IN_PROGRESS"
            ):
                # an endpoint accepts no new config while one is rolling out
                api.wait_get_serving_endpoint_not_updating(self.endpoint_name, timeout=self.timeout)
            done = api.update_config_and_wait(
                name=self.endpoint_name,
                served_entities=entities,
                traffic_config=traffic,
                timeout=self.timeout,
            )
            self.update_gateway(api, current.ai_gateway)
        ready = getattr(getattr(done.state, "ready", None), "value", "UNKNOWN") if done.state else "UNKNOWN"
        if ready != "READY":
            raise MarvelError(
                f"serving endpoint {self.endpoint_name} finished updating but is {ready}; "
                f"see its events in the workspace ({w.config.host}/ml/endpoints/{self.endpoint_name})"
            )
        endpoint = DatabricksEndpoint(
            name=self.endpoint_name,
            host=w.config.host,
            state=ready,
            variants=self.variants,
            versions=versions,
            inference_table=f"{self.catalog}.{self.schema}.{self.inference_table}",
        )
        log.info("serving endpoint %s is %s at %s", self.endpoint_name, ready, endpoint.invocations_url)
        return endpoint


def _table_key(table: AiGatewayInferenceTableConfig | None) -> tuple[Any, ...]:
    if table is None:
        return (None, None, None, False)
    return (table.catalog_name, table.schema_name, table.table_name_prefix, bool(table.enabled))

"""Serving: registered models behind a local HTTP endpoint that speaks MLflow's and Databricks' scoring
protocol, with A/B routing and an inference table (`custom_model_payload`) that loses no request.

    validation.py     request body -> validated character records (or a 400/413 that names the field)
    routing.py        deterministic per-character A/B routing
    models.py         loading registered models once; one predict interface for pyfunc and sklearn flavours
    inference_log.py  background, buffered writer of InferenceLog rows to the table store
    server.py         the HTTP layer (stdlib ThreadingHTTPServer)
    deployer.py       LocalDeployer(**cfg.deploy).deploy(ctx) -> LocalEndpoint
    client.py         Client(url, token).predict(records)
"""

"""Serving: registered models behind a local HTTP endpoint that speaks MLflow's and Databricks' scoring
protocol, with A/B routing and an inference table (`custom_model_payload`) that loses no request.

    validation.py     request body (JSON or CSV) -> validated character records (or a 4xx naming the field)
    routing.py        deterministic per-character A/B routing
    fast.py           the fast path: processor + LightGBM scored from plain records, without pandas
    models.py         resolving and loading registered models once; one predict interface for both flavours
    app.py            ServingApp: validate, route, predict, answer, log (no HTTP)
    journal.py        the append-only journal each request's row is written to before it is answered
    inference_log.py  moving journal rows into the table store, exactly once; recovery after a crash
    server.py         the HTTP routes (Starlette)
    http.py           uvicorn: strict framing, timeouts, bounded connections, graceful stop
    runtime.py        one serving process's pieces put together
    workers.py        deploy.workers > 1: worker processes on one port
    deployer.py       LocalDeployer(**cfg.deploy).deploy(ctx) -> LocalEndpoint
    recovery.py       recover(ctx): rows a crashed server left in its journal -> the table (deploy, monitor)
    client.py         Client(url, token).predict(records)
"""

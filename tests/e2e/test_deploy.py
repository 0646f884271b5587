"""The compose file, the Prometheus alerts and the Grafana dashboard cannot rot:
each is checked against the README and against what the services expose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import dramatiq
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from scheduler.main import SchedulerMetrics
from tests.e2e.test_booking import book

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = ("migrate", "web", "worker", "scheduler")
METRIC = re.compile(r"\b(fitnus_[a-z0-9_]+)")


def test_the_compose_file_starts_the_whole_stack_in_order() -> None:
    services: dict[str, Any] = COMPOSE["services"]
    assert set(services) >= {"mariadb", "redis", "kafka", "elasticsearch", "prometheus",
                             "grafana", *OURS}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for target in service.get("depends_on", {}):
            assert target in services, (name, target)
    for name in ("web", "worker", "scheduler"):
        assert services[name]["deploy"]["replicas"] == 2
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}
        assert services[name]["environment"]["SEARCH_BACKEND"] == "elasticsearch"
    assert services["migrate"]["depends_on"]["mariadb"] == {"condition": "service_healthy"}
    for name in ("mariadb", "redis", "kafka", "elasticsearch", "web", "worker"):
        assert "healthcheck" in services[name], name


def test_the_cluster_profile_runs_our_processes_on_a_redis_cluster_and_rabbitmq() -> None:
    services: dict[str, Any] = COMPOSE["services"]
    profiled = {name for name, service in services.items() if "cluster" in
                service.get("profiles", [])}
    nodes = {f"redis-node-{n}" for n in (1, 2, 3)}
    assert profiled == {*nodes, "redis-cluster", "rabbitmq", "web-cluster", "worker-cluster",
                        "scheduler-cluster"}
    # `docker compose up` without the profile needs nothing from it.
    for name, service in services.items():
        if name not in profiled:
            assert not set(service.get("depends_on", {})) & profiled, name
    create = " ".join(services["redis-cluster"]["command"])
    assert all(f"{node}:6379" in create for node in nodes)
    assert "--cluster-replicas 0" in create
    for name in ("web-cluster", "worker-cluster", "scheduler-cluster"):
        environment = services[name]["environment"]
        redis_url = environment["REDIS_URL"]
        assert redis_url.startswith("redis+cluster://")
        assert {address.split(":")[0] for address in
                redis_url.removeprefix("redis+cluster://").split(",")} == nodes
        assert environment["BROKER_URL"].startswith("amqp://")
        assert "@rabbitmq:5672/" in environment["BROKER_URL"]
        assert services[name]["depends_on"]["redis-cluster"] == {
            "condition": "service_completed_successfully"}
        assert environment["SEARCH_BACKEND"] == "elasticsearch"


def test_host_ports_are_unique() -> None:
    taken: list[int] = []
    for service in COMPOSE["services"].values():
        for mapping in service.get("ports", []):
            host = str(mapping).split(":")[0]
            first, _, last = host.partition("-")
            taken += range(int(first), int(last or first) + 1)
    assert len(taken) == len(set(taken)), sorted(taken)


def test_every_setting_the_compose_file_gives_our_processes_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    text = (ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"\$\{([A-Z_]+)", text))
    for name in OURS:
        names |= set(COMPOSE["services"][name]["environment"])
    undocumented = sorted(name for name in names if f"`{name}`" not in readme)
    assert not undocumented


async def test_every_metric_the_dashboard_and_alerts_read_is_exposed(
    client: TestClient[Any, Any],
) -> None:
    assert (await client.get("/healthz")).status == 200
    web_metrics = await (await client.get("/metrics")).text()
    scheduler = SchedulerMetrics(CollectorRegistry())
    scheduler.leader.set(1)
    scheduler.jobs.labels("record-daily-usage", "sent").inc()
    from actors.metrics import WorkerMetrics

    workers = CollectorRegistry()
    worker_metrics = WorkerMetrics(workers)
    worker_metrics.observe("timeslot", [], 0.01)
    worker_metrics.decisions.labels("reserve_seat", "succeeded").inc()
    exposed = (web_metrics + generate_latest(scheduler.registry).decode()
               + generate_latest(workers).decode())
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fitnus.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    alerts = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())
    queries += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    read = {re.sub(r"_(bucket|sum|count)$", "", name) for query in queries
            for name in METRIC.findall(query)}
    assert len(read) >= 8
    missing = sorted(name for name in read
                     if not re.search(rf"^{name}(_bucket|_sum|_count)?[{{ ]", exposed, re.M))
    assert not missing
    assert 'fitnus_keyed_queue_depth{kind="timeslot"}' in web_metrics


def test_prometheus_scrapes_web_workers_and_the_scheduler() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"web", "worker", "scheduler"}
    ports = {name: job["dns_sd_configs"][0]["port"] for name, job in jobs.items()}
    assert ports == {"web": 8080, "worker": 9191, "scheduler": 9192}
    assert COMPOSE["services"]["prometheus"]["volumes"][1].startswith("./deploy/alerts.yml")


async def test_the_worker_measures_each_batch_from_enqueue_to_commit(
    client: TestClient[Any, Any], sign_up: Any, worker: dramatiq.Worker,
) -> None:
    import actors.metrics
    from fitnus import keyed_queue

    registry = CollectorRegistry()
    metrics = actors.metrics.WorkerMetrics(registry)
    metrics.install()
    try:
        await book(client, sign_up)
    finally:
        keyed_queue.batch_observers.remove(metrics.observe)
        actors.metrics.installed = None
    assert (registry.get_sample_value("fitnus_decisions_total", {
        "command": "reserve_seat", "outcome": "succeeded"}) or 0) >= 1
    decided = registry.get_sample_value("fitnus_keyed_decision_latency_seconds_count",
                                        {"kind": "timeslot"})
    assert decided is not None
    assert decided >= 1
    assert 0 < (registry.get_sample_value("fitnus_keyed_decision_latency_seconds_sum",
                                          {"kind": "timeslot"}) or 0) < 10

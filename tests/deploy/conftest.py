"""The deploy/ topology for this package's tests: one cluster (nginx, two workers, PostgreSQL, Redis, SeaweedFS) per
module, Gemini being a simulator of the module's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.cluster import Cluster, nginx_executable
from gemini_sim import SimHandle, start_background
from tests.gemini_fixtures import FAST
from tests.live.real_servers import PROBLEM, redis_url, server_database, server_env
from tests.services import skip_or_fail


@pytest.fixture(scope="module")
def cluster_gemini(gemini_sim_state: Path) -> Iterator[SimHandle]:
    """The cluster's Gemini: a simulator as ``gemini_sim`` starts it (same state dir and CA, same options), for the
    module. ``gemini_sim`` itself is per test and points this process's settings, which server processes never
    read; one cluster for the module halves the runtime."""
    sim = start_background(gemini_sim_state, host="127.0.0.1", port=0, **FAST)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, cluster_gemini: SimHandle) -> Iterator[Cluster]:
    """nginx and two workers on a throwaway PostgreSQL database, Redis and a fresh SeaweedFS; their logs are
    checked for problems at the end."""
    if nginx_executable() is None:
        skip_or_fail("nginx is not installed (scripts/install-system-packages.sh)")
    redis = redis_url()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        skip_or_fail("DATABASE_URL is not PostgreSQL")
    tmp_path = tmp_path_factory.mktemp("cluster")
    with server_database(tmp_path) as database_url:
        env = server_env(cluster_gemini, database_url=database_url, media=tmp_path / "media", redis=redis)
        env.update(
            DJANGO_SETTINGS_MODULE="apsara.settings.production",
            DJANGO_SECRET_KEY="deploy-test-secret",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_SECURE_COOKIES="0",  # plain HTTP, as a browser on nginx's port sees it
        )
        with Cluster(run_dir=tmp_path / "run", count=2, port=0, env=env, seaweedfs=tmp_path / "s3") as running:
            yield running
        problems = [
            f"{worker.log.name}: {line}"
            for worker in running.workers
            for line in worker.log.read_text(errors="replace").splitlines()
            if PROBLEM.search(line)
        ]
        assert not problems, "\n".join(problems)

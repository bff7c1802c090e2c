"""The Prefect deployments of the scheduled retrains, declared here from params.yaml's `deploy`
section: one deployment `retrain/<family>` per model family (flows/retrain.py with
`family=<family>`), each with its cron, on one work pool.

    tagflow deploy                                   # the process pool: flows run in this checkout
    tagflow deploy --pool tagflow-docker --image registry.example.org/tagflow:1.4
                                                     # a Docker or Kubernetes pool: flows run in the image

Deploying again updates the deployments in place; params.yaml is the source of truth for the
crons and whether each schedule is active (a schedule paused in the UI is active again after a
redeploy if params.yaml says so)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .core.config import param
from .core.errors import ConfigError, TagflowError

ENTRYPOINT = "flows/retrain.py:retrain"
FLOW_NAME = "retrain"
IMAGE_WORKDIR = "/opt/tagflow"   # where infra/Dockerfile-style images hold the checkout


@dataclass
class ScheduleConfig:
    cron: str = param("0 3 * * *", "when the family retrains (cron, in deploy.timezone)")
    active: bool = param(False, "false: the schedule is declared but paused until turned on "
                                "(here or in the Prefect UI); a retrain takes the machine for hours")


def _schedule(cron: str):
    return field(default_factory=lambda: ScheduleConfig(cron=cron), metadata={"help": "cron + active"})


@dataclass
class SchedulesConfig:
    tagger: ScheduleConfig = _schedule("0 1 * * *")
    preference: ScheduleConfig = _schedule("0 4 * * 6")
    topics: ScheduleConfig = _schedule("0 2 * * *")
    edu: ScheduleConfig = _schedule("30 2 * * *")


@dataclass
class DeployConfig:
    pool: str = param("tagflow-process", "the work pool the deployments go to (created if a process pool)")
    timezone: str = param("UTC", "time zone of the crons")
    schedules: SchedulesConfig = field(default_factory=SchedulesConfig)


@dataclass(frozen=True)
class Spec:
    """One deployment, before it meets a server."""
    family: str
    schedule: object   # a prefect CronSchedule, checked
    active: bool


def specs(cfg: DeployConfig, families: list[str] | None = None) -> list[Spec]:
    declared = {name: getattr(cfg.schedules, name) for name in SchedulesConfig.__dataclass_fields__}
    unknown = sorted(set(families or []) - set(declared))
    if unknown:
        raise ConfigError(f"no schedule for {unknown} in params.yaml deploy.schedules; known: {sorted(declared)}")
    from prefect.client.schemas.schedules import CronSchedule

    out = []
    for name, s in declared.items():
        if families and name not in families:
            continue
        try:
            schedule = CronSchedule(cron=s.cron, timezone=cfg.timezone)
        except ValueError as exc:   # pydantic's ValidationError: its first error's message
            problem = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            raise ConfigError(f"params.yaml deploy.schedules.{name} ({s.cron!r}, {cfg.timezone}): {problem}") from None
        out.append(Spec(name, schedule, s.active))
    return out


def _api_url() -> str:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ConfigError("PREFECT_API_URL is not set: start a server (infra/prefect.sh server) and "
                          "export PREFECT_API_URL=http://127.0.0.1:4200/api, or use infra/prefect.sh deploy")
    return url


def _pool(client, name: str, image: str | None):
    """The work pool, created when missing if it is to be a process pool (no image): a Docker or
    Kubernetes pool needs its worker package, so its owner creates it (README "Docker and Kubernetes")."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        return client.read_work_pool(name)
    except ObjectNotFound:
        if image:
            raise ConfigError(f"work pool {name!r} does not exist: create it first with `prefect work-pool "
                              f"create {name} --type docker|kubernetes` (README \"Docker and Kubernetes\")") from None
        return client.create_work_pool(WorkPoolCreate(
            name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template()))


def apply(cfg: DeployConfig, root: Path, *, pool: str | None = None, image: str | None = None,
          env: dict[str, str] | None = None, families: list[str] | None = None) -> list[tuple[str, Spec]]:
    """Create or update the deployments on the server PREFECT_API_URL names: (full name, spec)."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    url = _api_url()
    chosen = specs(cfg, families)
    if not (root / ENTRYPOINT.split(":")[0]).exists():
        raise ConfigError(f"{root / ENTRYPOINT.split(':')[0]} not found: run tagflow deploy from the project root")
    try:
        httpx.get(f"{url}/health", timeout=10).raise_for_status()   # fail in seconds, not after the client's retries
        schema = parameter_schema(load_flow_from_entrypoint(str(root / ENTRYPOINT)).fn).model_dump()
        with get_client(sync_client=True) as client:
            work_pool = _pool(client, pool or cfg.pool, image)
            if work_pool.type != "process" and not image:
                raise ConfigError(f"work pool {work_pool.name!r} is a {work_pool.type} pool: name the image "
                                  "holding the project with --image")
            # A process worker runs the flow in this checkout; a container runs it in the image's.
            workdir = str(root) if work_pool.type == "process" else IMAGE_WORKDIR
            flow_id = client.create_flow_from_name(FLOW_NAME)
            names = []
            for spec in chosen:
                client.create_deployment(
                    flow_id=flow_id, name=spec.family, entrypoint=ENTRYPOINT,
                    description=f"Retrain the {spec.family} family: dvc pull, dvc repro, dvc push, registry decision.",
                    parameters={"family": spec.family}, parameter_openapi_schema=schema,
                    work_pool_name=work_pool.name, tags=["tagflow", "retrain", spec.family],
                    pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": workdir}}],
                    job_variables=({"image": image} if image else {}) | ({"env": env} if env else {}),
                    schedules=[DeploymentScheduleCreate(schedule=spec.schedule, active=spec.active)],
                )
                names.append((f"{FLOW_NAME}/{spec.family}", spec))
            return names
    except httpx.HTTPError as exc:
        raise TagflowError(f"Prefect server at {url} did not answer ({type(exc).__name__}): is it running?") from None

"""Projections: the runner (checkpoints, catch-up, rebuild and swap) and the read models it keeps."""

from __future__ import annotations

from projections.api_tokens import ApiTokensProjection
from projections.campaigns import CampaignsProjection
from projections.crawl_tasks import CrawlTasksProjection
from projections.inbox import InboxProjection
from projections.leads import LeadsProjection
from projections.model import Projection
from projections.org_settings import OrgSettingsProjection
from projections.programs import LeadProgramsProjection
from projections.touch_runs import TouchRunsProjection

# Every read model `touchline up` keeps and `touchline projections` knows, by name.
ALL_PROJECTIONS: tuple[type[Projection], ...] = (
    LeadsProjection,
    CampaignsProjection,
    TouchRunsProjection,
    OrgSettingsProjection,
    InboxProjection,
    CrawlTasksProjection,
    LeadProgramsProjection,
    ApiTokensProjection,
)


def projection_classes(names: list[str] | None = None) -> list[type[Projection]]:
    """The named projections (all when None); an unknown name is an error that lists the known ones."""
    known = {p.name: p for p in ALL_PROJECTIONS}
    if names is None:
        return list(ALL_PROJECTIONS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown projection {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


__all__ = ["ALL_PROJECTIONS", "Projection", "projection_classes"]

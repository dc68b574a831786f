"""What a W&B server can do, probed as W&B's own clients probe it, once per connection and process.

The read plan varies on it: an organization with advanced registry search has its registry links read
newest first by link time; without it, every registry collection's links are read in full. Each probe
sends a W&B client's own document, verbatim, and reads only the fields that client reads:

- ``ServerFeaturesQuery``: the wandb SDK (``wandb/sdk/internal/_generated/operations.py``) and
  wandb-core (``core/api/graphql/query_server_features.graphql``): the server's enabled features.
- ``FetchAdvancedRegistryFeatures``: the wandb SDK (``wandb/sdk/artifacts/_generated/operations.py``),
  asked by ``advanced_search_enabled`` (``wandb/apis/public/registries/_utils.py``) only when the server
  has ``ARTIFACT_COLLECTIONS_FILTERING_SORTING``, as here.
- ``ServerInfo``: wandb-core (``core/api/graphql/query_server_info.graphql``), whose
  ``latestLocalVersionInfo.versionOnThisInstanceString`` is the server's version (a self-managed
  server says it; W&B's cloud may not).
- ``FetchOrgInfoFromEntity``: the wandb SDK: an entity's organization(s).

A read asks with ``yield from advanced_search(org)`` / ``yield from server_features()``: the runner
(``transport.plan``) answers from the endpoint's memory or runs the probe once; a probe that fails gives
the conservative answer (the feature off) and is logged once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .transport import GraphQLCall, Probe, Read

SERVER_FEATURES_QUERY = """
query ServerFeaturesQuery {
  serverInfo {
    features {
      name
      isEnabled
    }
  }
}
"""

FETCH_ADVANCED_REGISTRY_FEATURES_QUERY = """
query FetchAdvancedRegistryFeatures($organization: String!) {
  organization(name: $organization) {
    advancedRegistryFeatures {
      advancedSearch
    }
  }
}
"""

SERVER_INFO_QUERY = """query ServerInfo{
    serverInfo {
        cliVersionInfo
        latestLocalVersionInfo {
            outOfDate
            latestVersionString
            versionOnThisInstanceString
        }
    }
}
"""

FETCH_ORG_INFO_FROM_ENTITY_QUERY = """
query FetchOrgInfoFromEntity($entity: String!) {
  entity(name: $entity) {
    organization {
      ...OrgInfoFragment
    }
    user {
      organizations {
        ...OrgInfoFragment
      }
    }
  }
}

fragment OrgInfoFragment on Organization {
  name
  orgEntity {
    name
  }
}
"""

VIEWER_QUERY = "query WbautoViewer { viewer { username entity } }"

# The feature the SDK checks before it asks for an organization's advanced registry features.
FILTERING_SORTING = "ARTIFACT_COLLECTIONS_FILTERING_SORTING"
# The SDK's canonical order name for link time (``linked_at``) in advanced search, newest first.
LINK_TIME_ORDER = "-acm_created_at"


def _read_server_features() -> Read[frozenset[str]]:
    data = yield GraphQLCall(SERVER_FEATURES_QUERY, {})
    features = (data.get("serverInfo") or {}).get("features") or []
    return frozenset(f["name"] for f in features if f and f["isEnabled"])


def server_features() -> Read[frozenset[str]]:
    """The names of the server's enabled features (none, if the probe fails)."""
    features: frozenset[str] = yield Probe("server-features", _read_server_features, frozenset())
    return features


def _read_advanced_search(organization: str) -> Read[bool]:
    data = yield GraphQLCall(FETCH_ADVANCED_REGISTRY_FEATURES_QUERY, {"organization": organization})
    features = (data.get("organization") or {}).get("advancedRegistryFeatures") or {}
    return bool(features.get("advancedSearch"))


def advanced_search(organization: str) -> Read[bool]:
    """Whether ``organization`` has advanced registry search (the SDK's ``advanced_search_enabled``):
    only then may its registry links be read ordered by link time. False if a probe fails."""
    if FILTERING_SORTING not in (yield from server_features()):
        return False  # the field came with this feature: a server without it does not have it
    enabled: bool = yield Probe(f"advanced-search:{organization}", lambda: _read_advanced_search(organization), False)
    return enabled


def _read_server_version() -> Read[str | None]:
    data = yield GraphQLCall(SERVER_INFO_QUERY, {})
    info = (data.get("serverInfo") or {}).get("latestLocalVersionInfo") or {}
    version = info.get("versionOnThisInstanceString")
    return str(version) if version else None


def server_version() -> Read[str | None]:
    """The server's version where it says (a self-managed server), else None."""
    version: str | None = yield Probe("server-version", _read_server_version, None)
    return version


def read_viewer() -> Read[dict[str, Any]]:
    """The API key's viewer: ``{"username", "entity"}`` (empty if W&B gives none)."""
    data = yield GraphQLCall(VIEWER_QUERY, {})
    viewer: dict[str, Any] = data.get("viewer") or {}
    return viewer


def read_organizations(entity: str) -> Read[list[str]]:
    """The organizations of ``entity`` (its own, else its user's), as the SDK finds them."""
    data = yield GraphQLCall(FETCH_ORG_INFO_FROM_ENTITY_QUERY, {"entity": entity})
    node = data.get("entity") or {}
    own = node.get("organization")
    found = [own] if own else (node.get("user") or {}).get("organizations") or []
    return [org["name"] for org in found if org and org.get("name")]


def organizations_of(entity: str) -> Read[list[str]]:
    """``read_organizations`` once per endpoint and process (none, if the lookup fails)."""
    organizations: list[str] = yield Probe(f"organizations:{entity}", lambda: read_organizations(entity), [])
    return organizations


@dataclass(frozen=True)
class Capabilities:
    """What the read plan varies on, as probed (conservative where a probe failed).

    :param features: the server's enabled features.
    :param advanced_search: per organization probed, whether it has advanced registry search.
    :param version: the server's version, where it says.
    """

    features: frozenset[str] = frozenset()
    advanced_search: Mapping[str, bool] = field(default_factory=dict)
    version: str | None = None


def read_capabilities(organizations: Sequence[str] = ()) -> Read[Capabilities]:
    """The server's capabilities, and advanced search for each of ``organizations``."""
    features = yield from server_features()
    version = yield from server_version()
    search = {}
    for organization in organizations:
        search[organization] = yield from advanced_search(organization)
    return Capabilities(features=features, advanced_search=search, version=version)


def read_plan(capabilities: Capabilities) -> dict[str, str]:
    """For each event family, the reads a poll makes on a server with these capabilities."""
    fast = sorted(o for o, on in capabilities.advanced_search.items() if on)
    slow = sorted(o for o, on in capabilities.advanced_search.items() if not on)
    newest = (
        f'orgEntity.artifactMemberships(order: "{LINK_TIME_ORDER}") newest first, down to the cursor '
        "(advanced search{})"
    )
    full = "orgEntity.artifactMemberships of the registry read in full, O(links) a poll (no advanced search{})"
    if not capabilities.advanced_search:
        links = full.format("")
    elif not slow:
        links = newest.format(": " + ", ".join(fast))
    else:
        links = "; ".join(
            [*([newest.format(": " + ", ".join(fast))] if fast else []), full.format(": " + ", ".join(slow))]
        )
    return {
        "run state / metric": (
            'project.runs(order: "-heartbeat_at") newest heartbeat first, down to the cursor; '
            "then sampledHistory per metric for the runs that changed"
        ),
        "created versions": 'each collection\'s artifacts(order: "-version_index") newest first, down to the cursor',
        "registry links": links,
        "aliases": (
            "each collection's aliases, 10 collections a request, and the version each names "
            "(artifactCollectionMembership(name:), 50 a request): (alias, version) pairs compared with the last poll"
        ),
        "tags": "each collection's versions and their tags, compared with the last poll",
        "unlinks": "each collection's memberships read in full; a link gone since the last poll is an unlink",
    }


# -- what ``wbauto doctor`` and the connection's Test button say ------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """The API key's viewer (``username``, ``entity``), the organizations probed and the capabilities."""

    viewer: Mapping[str, Any]
    organizations: Sequence[str]
    capabilities: Capabilities


def read_diagnosis(organizations: Sequence[str] | None = None) -> Read[Diagnosis]:
    """The viewer, and the capabilities for ``organizations`` (default: the viewer's entity's, found as
    the SDK finds them; none if that lookup fails)."""
    viewer = yield from read_viewer()
    if organizations is None:
        entity = viewer.get("entity")
        organizations = []
        if entity:
            organizations = yield from organizations_of(entity)
    found = yield from read_capabilities(organizations)
    return Diagnosis(viewer, list(organizations), found)


def _version(diagnosis: Diagnosis, failed: Mapping[str, str]) -> str:
    if diagnosis.capabilities.version:
        return diagnosis.capabilities.version
    return "unknown (the probe failed)" if "server-version" in failed else "not said (W&B's cloud does not say)"


def report(diagnosis: Diagnosis, host: str, conn_id: str, failed: Mapping[str, str]) -> list[str]:
    """``wbauto doctor``'s lines: server, version, features, viewer, organizations, failed probes, read plan."""
    found = diagnosis.capabilities
    features = ", ".join(sorted(found.features)) or "none reported"
    viewer = diagnosis.viewer
    lines = [
        f"server:        {host} (connection {conn_id!r})",
        f"version:       {_version(diagnosis, failed)}",
        f"features:      {features}",
        f"viewer:        {viewer.get('username')} (entity {viewer.get('entity')})",
    ]
    if found.advanced_search:
        search = ", ".join(f"{o} {'on' if on else 'off'}" for o, on in sorted(found.advanced_search.items()))
        lines.append(f"advanced registry search: {search}")
    else:
        lines.append("advanced registry search: no organization probed")
    if failed:
        lines.append("probes that failed (their conservative answer is used):")
        lines += [f"  {key}: {why}" for key, why in sorted(failed.items())]
    lines.append("read plan:")
    plan = read_plan(found)
    width = max(map(len, plan))
    lines += [f"  {family.ljust(width)}  {how}" for family, how in plan.items()]
    return lines


def summary(diagnosis: Diagnosis, host: str, failed: Mapping[str, str]) -> str:
    """The Test button's one line."""
    viewer = diagnosis.viewer
    search = diagnosis.capabilities.advanced_search
    links = "registry links newest first" if search and all(search.values()) else "registry links read in full"
    probes = f"; {len(failed)} probe(s) failed, conservative plan" if failed else ""
    return (
        f"Connected to W&B at {host} as {viewer.get('username')} (entity {viewer.get('entity')}); "
        f"server {_version(diagnosis, failed)}, {len(diagnosis.capabilities.features)} feature(s); {links}{probes}"
    )

"""An answer of the wrong shape is an error naming the query; one that says there is another page but
repeats its cursor (or gives none) is an error, not a loop until the server stops answering. No
server here answers so; the reads are generators of GraphQL calls, so they are driven with
hand-written answers, no transport involved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wbauto.hooks.transport import GraphQLCall, Read, WandbError, checked
from airflow_provider_wbauto.hooks.wandb import (
    read_memberships,
    read_newest_links,
    read_newest_versions,
    read_projects,
    read_runs,
)

pytestmark = pytest.mark.hostile  # the hostile-input corpus (python -m reliability counts it)


def _page(cursor: str | None, more: bool = True) -> dict[str, Any]:
    return {"edges": [], "pageInfo": {"endCursor": cursor, "hasNextPage": more}}


def _answer(read: Read[Any], answers: Callable[[int, GraphQLCall], dict[str, Any]], calls: int = 10) -> Any:
    """The read's result against ``answers(i, call)`` for its i-th call; it must end within ``calls``."""
    call = next(read)
    for i in range(calls):
        try:
            call = read.send(answers(i, call))
        except StopIteration as done:
            return done.value
    raise AssertionError(f"still reading after {calls} calls")


READS: dict[str, tuple[Callable[[], Read[Any]], Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "runs": (lambda: read_runs("e", "p"), lambda page: {"project": {"runs": page}}, "the runs of e/p"),
    "projects": (lambda: read_projects("e"), lambda page: {"models": page}, "the projects of e"),
    "collections": (
        lambda: read_memberships("e", "p"),
        lambda page: {"project": {"artifactCollections": page}},
        "the collections of e/p",
    ),
    "members": (
        lambda: read_memberships("e", "p", "model"),
        lambda page: {"project": {"artifactCollection": {"artifactMemberships": page}}},
        "the artifactMemberships of model",
    ),
    "links": (  # without advanced search every link is read, page after page
        lambda: read_newest_links("e", "wandb-registry-model", None, stop=lambda page: True, ordered=False),
        lambda page: {"entity": {"organization": {"orgEntity": {"artifactMemberships": page}}}},
        "the links of wandb-registry-model",
    ),
    "newest versions": (  # an empty page holds nothing seen, so paging goes on
        lambda: read_newest_versions("e", "p", "model", stop=lambda page: bool(page)),
        lambda page: {"project": {"artifactCollection": {"__typename": "ArtifactSequence", "artifacts": page}}},
        "the versions of model",
    ),
}


@pytest.mark.parametrize("what", sorted(READS))
@pytest.mark.parametrize("cursors", [["c1", "c1"], ["c1", "c2", "c1"], [None], [""]], ids=str)
def test_a_cursor_repeated_or_missing_is_an_error_naming_the_listing(what: str, cursors: list[str | None]) -> None:
    read, wrap, name = READS[what]
    with pytest.raises(WandbError, match=f"W&B paged {name} with a next-page cursor of .* again or none"):
        _answer(read(), lambda i, _: wrap(_page(cursors[min(i, len(cursors) - 1)])))


@pytest.mark.parametrize("what", sorted(READS))
def test_distinct_cursors_are_followed_to_the_last_page(what: str) -> None:
    read, wrap, _ = READS[what]
    asked: list[Any] = []

    def answers(i: int, call: GraphQLCall) -> dict[str, Any]:
        variables = call.variables
        asked.append(variables["collectionCursor"] if "collectionCursor" in variables else variables["cursor"])
        return wrap(_page(f"c{i + 1}", more=i < 2))

    _answer(read(), answers)
    assert asked == [None, "c1", "c2"]


MALFORMED = [
    ("runs", lambda: read_runs("e", "p"), {"project": {"runs": {"edges": "x"}}}, "TypeError"),
    ("runs", lambda: read_runs("e", "p"), {"project": {"runs": {}}}, "KeyError: 'edges'"),
    ("runs", lambda: read_runs("e", "p"), {"project": {"runs": {"edges": [{"node": {}}], "pageInfo": {}}}}, "KeyError"),
    ("runs", lambda: read_runs("e", "p"), {"project": []}, "TypeError: list indices"),
    ("projects", lambda: read_projects("e"), {"models": {"edges": [None]}}, "TypeError"),
    ("projects", lambda: read_projects("e"), {"models": 7}, "TypeError"),
    ("members", lambda: read_memberships("e", "p", "model"), {"project": {"artifactCollection": "x"}}, "Error"),
]


@pytest.mark.parametrize(
    ("what", "read", "answer", "said"), MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)]
)
def test_an_answer_of_the_wrong_shape_is_an_error_naming_the_query(
    what: str, read: Callable[[], Read[Any]], answer: dict[str, Any], said: str
) -> None:
    with pytest.raises(WandbError, match=r"W&B's answer to Wbauto\w+ is not what W&B's API gives \(.*" + said):
        _answer(checked(read()), lambda i, _: answer)

"""Candidate selection shared by every balancer: active first, then the first backup (or all)."""

from __future__ import annotations

from typing import Any

import pytest

from haproxy_py.core.lb.tiers import Tier, has_free_slot, select_tier
from haproxy_py.core.server import ServerState


def make(name: str, puid: int, **kw: Any) -> ServerState:
    return ServerState(name=name, puid=puid, **kw)


def names(tier: Tier) -> list[str]:
    return [s.name for s in tier.servers]


def test_active_usable_servers_in_declaration_order() -> None:
    servers = [make("a", 1), make("b", 2, up=False), make("c", 3), make("bk", 4, backup=True)]
    tier = select_tier(servers, allbackups=False)
    assert names(tier) == ["a", "c"]
    assert not tier.backup


@pytest.mark.parametrize(
    "state",
    [{"up": False}, {"maint": True}, {"drain": True}, {"weight": 0}],
    ids=["down", "maint", "drain", "weight0"],
)
def test_unusable_servers_are_never_candidates(state: dict[str, object]) -> None:
    servers = [make("a", 1, **state), make("b", 2)]
    assert names(select_tier(servers, allbackups=False)) == ["b"]


def test_first_usable_backup_only_when_no_active_is_usable() -> None:
    servers = [
        make("a", 1, up=False),
        make("bk1", 2, backup=True, maint=True),
        make("bk2", 3, backup=True),
        make("bk3", 4, backup=True),
    ]
    tier = select_tier(servers, allbackups=False)
    assert names(tier) == ["bk2"]
    assert tier.backup


def test_allbackups_uses_every_usable_backup() -> None:
    servers = [
        make("a", 1, up=False),
        make("bk1", 2, backup=True),
        make("bk2", 3, backup=True, drain=True),
        make("bk3", 4, backup=True),
    ]
    assert names(select_tier(servers, allbackups=True)) == ["bk1", "bk3"]


def test_nothing_usable_gives_an_empty_tier() -> None:
    servers = [make("a", 1, up=False), make("bk", 2, backup=True, maint=True)]
    assert select_tier(servers, allbackups=True).servers == ()


def test_signature_changes_with_weight_and_membership() -> None:
    a, b = make("a", 1), make("b", 2)
    before = select_tier([a, b], False).signature()
    assert select_tier([a, b], False).signature() == before
    b.weight = 3
    assert select_tier([a, b], False).signature() != before


@pytest.mark.parametrize(
    ("maxconn", "served", "queued", "free"),
    [
        (0, 1000, 0, True),
        (0, 5, 3, True),
        (2, 1, 0, True),
        (2, 2, 0, False),
        (2, 3, 0, False),
        (2, 1, 1, False),  # requests already waiting for it go first
    ],
)
def test_has_free_slot(maxconn: int, served: int, queued: int, free: bool) -> None:
    assert has_free_slot(make("a", 1, maxconn=maxconn, served=served, queued=queued)) is free

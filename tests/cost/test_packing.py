"""First-fit decreasing packing and the per-node system reserve."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mims.cost.packing import (
    DoesNotFit,
    Item,
    allocatable,
    first_fit_decreasing,
    lower_bound,
    system_reserve,
)

MIB = 2**20


@pytest.mark.parametrize(
    "vcpu, memory_gib, cpu_m, memory_mib",
    [
        # CPU: 6% of the 1st core, 1% of the 2nd, 0.5% of the 3rd and 4th, 0.25% above; + 200m cluster pods.
        # Memory: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112;
        # + 100 MiB eviction threshold + 512 MiB cluster pods.
        (2, 4, 60 + 10 + 200, 1024 + 100 + 512),  # 270m, 1636 MiB
        (3, 4, 60 + 10 + 5 + 200, 1024 + 100 + 512),  # 275m
        (4, 8, 60 + 10 + 10 + 200, 1024 + 819.2 + 100 + 512),  # 280m, 2455.2 MiB
        (8, 16, 60 + 10 + 10 + 10 + 200, 1024 + 819.2 + 819.2 + 100 + 512),  # 290m, 3274.4 MiB
        (8, 32, 290, 1024 + 819.2 + 819.2 + 983.04 + 100 + 512),  # 6% of 16 GiB = 983.04 MiB
    ],
)
def test_system_reserve_by_hand(vcpu, memory_gib, cpu_m, memory_mib):
    reserved_cpu, reserved_memory = system_reserve(vcpu, memory_gib)
    assert reserved_cpu == cpu_m
    assert reserved_memory / MIB == pytest.approx(memory_mib, abs=1e-6)
    assert allocatable(vcpu, memory_gib)[0] == vcpu * 1000 - cpu_m


def test_tiny_nodes_keep_the_flat_reserve_and_daemonsets_come_off_every_node():
    assert system_reserve(1, 0.5)[1] == (255 + 100 + 512) * MIB
    plain = allocatable(4, 16)
    with_daemon = allocatable(4, 16, ((50, 64 * MIB),))
    assert with_daemon == (plain[0] - 50, plain[1] - 64 * MIB)
    assert allocatable(0.1, 0.5) == (0, 0)  # never negative


def test_pods_are_placed_largest_first_on_the_first_node_with_room():
    items = [Item("a", 100, 600), Item("b", 100, 500), Item("c", 100, 400), Item("d", 100, 300)]
    bins = first_fit_decreasing(items, 1000, 1000)
    assert [[i.name for i in b.items] for b in bins] == [["a", "c"], ["b", "d"]]


def test_a_pod_bigger_than_a_node_does_not_fit():
    with pytest.raises(DoesNotFit) as info:
        first_fit_decreasing([Item("small", 1, 1), Item("huge", 10, 2000)], 1000, 1000)
    assert info.value.item.name == "huge"


def test_lower_bound_from_totals():
    items = [Item(str(i), 300, 100) for i in range(10)]  # 3000m CPU, 1000 bytes
    assert lower_bound(items, 1000, 10_000) == 3
    assert lower_bound(items, 10_000, 300) == 4
    assert lower_bound([], 1000, 1000) == 0


@st.composite
def workloads(draw):
    cpu = draw(st.integers(min_value=100, max_value=16_000))
    memory = draw(st.integers(min_value=64, max_value=65_536))
    count = draw(st.integers(min_value=0, max_value=60))
    items = [
        Item(
            f"pod-{i}", draw(st.integers(min_value=0, max_value=cpu)), draw(st.integers(min_value=0, max_value=memory))
        )
        for i in range(count)
    ]
    return items, cpu, memory


@settings(max_examples=300, deadline=None)
@given(workloads())
def test_packing_properties(case):
    items, cpu, memory = case
    bins = first_fit_decreasing(items, cpu, memory)
    placed = [item for b in bins for item in b.items]
    # every pod placed, exactly once
    assert sorted(i.name for i in placed) == sorted(i.name for i in items)
    for b in bins:
        # no node over its allocatable CPU or memory, and the bookkeeping matches the contents
        assert b.used_cpu_m == sum(i.cpu_m for i in b.items) <= cpu
        assert b.used_memory == sum(i.memory for i in b.items) <= memory
        assert b.items, "no empty nodes"
    # never fewer nodes than the totals allow
    assert len(bins) >= lower_bound(items, cpu, memory)
    # stable: the same input gives the same packing
    again = first_fit_decreasing(list(reversed(items)), cpu, memory)
    assert [[i.name for i in b.items] for b in again] == [[i.name for i in b.items] for b in bins]


@settings(max_examples=100, deadline=None)
@given(workloads())
def test_first_fit_never_opens_a_node_while_an_earlier_one_has_room(case):
    """First fit: any pod on node k did not fit on nodes 1..k-1 when it was placed, so the last
    node's first pod does not fit the room left on the earlier nodes at the end either."""
    items, cpu, memory = case
    bins = first_fit_decreasing(items, cpu, memory)
    for k, b in enumerate(bins[1:], start=1):
        first = b.items[0]
        for earlier in bins[:k]:
            assert (earlier.used_cpu_m + first.cpu_m > cpu) or (earlier.used_memory + first.memory > memory)

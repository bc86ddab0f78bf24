"""Connected components inside Beam (large-star / small-star, Kiveris et al. 2014), and the
star edges of a group, which turn a group of equal keys into edges to its smallest member.
A worker holds at most one node's neighbourhood in memory.

For a graph that fits one worker, ComponentsInOneWorker gives the same result from one
group and a union-find: 2 x max_rounds fewer shuffles, each of which costs a runner a
fixed overhead whatever its size (most of a small corpus's dedup time)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam


def star_edges(_key, members: Iterable) -> Iterator[tuple]:
    """(smallest, other) for every member of a group but the smallest, in two passes over
    the grouped values (Beam's grouped iterables may be re-iterated, and may not fit in memory)."""
    smallest = min(members)
    for member in members:
        if member != smallest:
            yield smallest, member


def components_in_memory(edges: Iterable[tuple]) -> Iterator[tuple]:
    """(node, smallest node of its component) for every node of an edge (self-loops
    ignored): union-find whose roots are their components' smallest nodes."""
    parent: dict = {}

    def root(node):
        top = node
        while parent[top] != top:
            top = parent[top]
        while parent[node] != top:  # path compression
            parent[node], node = top, parent[node]
        return top

    for u, v in edges:
        if u == v:
            continue
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = root(u), root(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    for node in parent:
        yield node, root(node)


class ComponentsInOneWorker(beam.PTransform):
    """Edges (u, v) -> (node, smallest node of its component), as ConnectedComponents, from
    all edges grouped in one worker (which holds them: for graphs known to be small)."""

    def expand(self, edges):
        return (
            edges
            | "OneGroup" >> beam.Map(lambda edge: (None, edge))
            | "AllEdges" >> beam.GroupByKey()
            | "UnionFind" >> beam.FlatMapTuple(lambda _, grouped: components_in_memory(grouped))
        )


class ComponentsNotConverged(RuntimeError):
    """The large-star/small-star rounds did not reach a forest of stars."""


class ConnectedComponents(beam.PTransform):
    """Edges (u, v) -> (node, smallest node of its component) for every node of an edge.

    Alternates large-star and small-star rounds (Kiveris et al. 2014, "Connected
    Components in MapReduce and Beyond"), unrolled `max_rounds` times since a Beam graph
    is static; O(log n) rounds suffice in practice. Each step groups edges by node, so a
    worker holds one node's neighbourhood at a time. Self-loops carry no connectivity
    and are ignored. The pipeline fails if the graph is not a forest of stars after the
    last round.
    """

    def __init__(self, max_rounds: int):
        super().__init__()
        self.max_rounds = max_rounds

    def expand(self, edges):
        edges = edges | "SmallerNodeFirst" >> beam.FlatMapTuple(_ordered_edge)
        for round_number in range(1, self.max_rounds + 1):
            edges = (
                edges
                | f"LargeStar{round_number}" >> _LargeStar()
                | f"SmallStar{round_number}" >> _SmallStar()
            )
        return edges | "CentreOfEachStar" >> _CentreOfEachStar(self.max_rounds)


def _ordered_edge(u, v) -> Iterator[tuple]:
    if u != v:
        yield (u, v) if u < v else (v, u)


class _LargeStar(beam.PTransform):
    """Connect every neighbour larger than a node to the smallest node of its closed neighbourhood."""

    def expand(self, edges):
        return (
            edges
            | "BothDirections" >> beam.FlatMapTuple(lambda u, v: ((u, v), (v, u)))
            | "GroupByNode" >> beam.GroupByKey()
            | "Connect" >> beam.FlatMapTuple(_large_star)
        )


def _large_star(node, neighbours: Iterable) -> Iterator[tuple]:
    neighbours = set(neighbours)
    centre = min(min(neighbours), node)
    for neighbour in neighbours:
        if neighbour > node:
            yield centre, neighbour


class _SmallStar(beam.PTransform):
    """Connect a node and its smaller neighbours to the smallest of them."""

    def expand(self, edges):
        return (
            edges
            | "KeyByLarger" >> beam.KvSwap()
            | "GroupByNode" >> beam.GroupByKey()
            | "Connect" >> beam.FlatMapTuple(_small_star)
        )


def _small_star(node, smaller_neighbours: Iterable) -> Iterator[tuple]:
    smaller_neighbours = set(smaller_neighbours)
    centre = min(smaller_neighbours)
    for neighbour in smaller_neighbours:
        if neighbour != centre:
            yield centre, neighbour
    yield centre, node


class _CentreOfEachStar(beam.PTransform):
    """(node, centre) for every node once the edges form stars centred on their smallest
    nodes, which is what the rounds converge to; fails the pipeline otherwise.

    Each edge names its smaller end to both ends; in a converged graph every node then
    hears one name only, its star's centre."""

    def __init__(self, max_rounds: int):
        super().__init__()
        self.max_rounds = max_rounds

    def expand(self, edges):
        return (
            edges
            | "TellBothEnds" >> beam.FlatMapTuple(lambda centre, leaf: ((leaf, centre), (centre, centre)))
            | "GroupByNode" >> beam.GroupByKey()
            | "OnlyCentre" >> beam.FlatMap(_only_centre, self.max_rounds)
        )


def _only_centre(node_and_centres: tuple, max_rounds: int) -> Iterator[tuple]:
    node, centres = node_and_centres
    centres = iter(centres)
    centre = next(centres)
    for other in centres:
        if other != centre:
            raise ComponentsNotConverged(
                f"connected components of the near-duplicate graph did not converge within "
                f"dedup.near.max_rounds={max_rounds} rounds of large-star/small-star (node {node!r} is "
                f"not yet in a single star); raise dedup.near.max_rounds in the build config"
            )
    yield node, centre

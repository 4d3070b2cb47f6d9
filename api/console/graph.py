"""Lay out a pipeline's stage DAG (refId / requisiteStageRefIds) for an SVG drawn server-side.

Columns are longest-path depth from the roots, so every edge points right; within a column stages
keep pipeline order. The template draws boxes and edges from these numbers: no JS graph library.
Unknown parents are ignored (a submitted pipeline has none; a restored state might) and a cycle
cannot hang the layout (depth is bounded by the stage count).
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.state import StageState

NODE_WIDTH = 180
NODE_HEIGHT = 54
COLUMN_GAP = 56
ROW_GAP = 18
MARGIN = 10
LABEL_CHARS = 22  # what fits in a box at the console's font size


@dataclass(frozen=True)
class Node:
    ref_id: str
    label: str
    type: str
    status: str
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    path: str  # SVG path data, numbers only
    status: str  # the parent's status, to colour the edge


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _depths(stages: list[StageState]) -> dict[str, int]:
    known = {s.refId for s in stages}
    depth = {s.refId: 0 for s in stages}
    # Bellman-Ford style relaxation: at most len(stages) rounds even if the input had a cycle.
    for _ in range(len(stages)):
        changed = False
        for stage in stages:
            for parent in stage.requisiteStageRefIds:
                if parent in known and depth[parent] + 1 > depth[stage.refId]:
                    depth[stage.refId] = depth[parent] + 1
                    changed = True
        if not changed:
            break
    return depth


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(stages: list[StageState]) -> Graph:
    depth = _depths(stages)
    rows: dict[int, int] = {}
    position: dict[str, tuple[int, int]] = {}
    nodes: list[Node] = []
    for stage in stages:
        column = depth[stage.refId]
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
        y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
        position[stage.refId] = (x, y)
        nodes.append(
            Node(
                ref_id=stage.refId,
                label=shorten(stage.name or stage.refId),
                type=shorten(stage.type),
                status=stage.status.value,
                x=x,
                y=y,
            )
        )
    status = {s.refId: s.status.value for s in stages}
    edges: list[Edge] = []
    for stage in stages:
        x2, y2 = position[stage.refId]
        for parent in stage.requisiteStageRefIds:
            if parent not in position:
                continue
            x1, y1 = position[parent]
            start = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2)
            end = (x2, y2 + NODE_HEIGHT // 2)
            bend = (start[0] + end[0]) // 2
            path = f"M{start[0]},{start[1]} C{bend},{start[1]} {bend},{end[1]} {end[0] - 4},{end[1]}"
            edges.append(Edge(path=path, status=status[parent]))
    columns = max(depth.values(), default=0) + 1
    width = 2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP
    most_rows = max(rows.values(), default=1)
    height = 2 * MARGIN + most_rows * NODE_HEIGHT + (most_rows - 1) * ROW_GAP
    return Graph(nodes=nodes, edges=edges, width=width, height=height)

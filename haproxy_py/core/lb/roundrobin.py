"""`balance roundrobin`: HAProxy's fast weighted round robin ("fwrr", src/lb_fwrr.c).

A plain smooth weighted round robin gives the right proportions but not HAProxy's sequences
(3/2/1 must give s1 s2 s1 s3 s1 s2, not s1 s2 s1 s3 s2 s1), and users compare logs. So this is
fwrr itself: every server has a next position `npos` on a virtual axis, a cursor `curr_pos`
advances by one per pick, and the server with the smallest position (heavier first on ties) is
taken, then moved `total_weight / weight` further, carrying the remainder. Servers that would land
beyond the current window wait in a "next" tree; when the current tree empties, "next" becomes the
"init" tree of the next window. Fresh servers wait in "init", heaviest first (declaration order
among equals), and join the rotation only when the current tree has a hole: that is why 1/1/1
starts at s1 and 3/2/1 gives s1 s2 s1 s3 s1 s2.

Weight and state changes are applied per server, exactly as HAProxy's callbacks do, so the rotation
is adjusted rather than restarted. Every pick is O(log n): the trees are binary heaps with lazy
deletion. The one deliberate departure from HAProxy (`exact_windows`) is described on the class.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from haproxy_py.core.lb.base import BalanceParams, Balancer, PickContext
from haproxy_py.core.lb.tiers import has_free_slot
from haproxy_py.core.server import ServerState

BE_WEIGHT_SCALE = 16
SRV_UWGHT_RANGE = 256
SRV_EWGHT_MAX = SRV_UWGHT_RANGE * BE_WEIGHT_SCALE


class _Node:
    """fwrr's per-server fields (HAProxy keeps them in `struct server`).

    `eweight` and `usable` are the committed values (HAProxy's cur_eweight and current state), so
    `recalc()` can tell what changed since the last call.
    """

    __slots__ = (
        "srv",
        "npos",
        "lpos",
        "rweight",
        "eweight",
        "usable",
        "backup",
        "tree",
        "in_tree",
        "seq",
        "turns",
    )

    def __init__(self, srv: ServerState) -> None:
        self.srv = srv
        self.npos = 0
        self.lpos = 0
        self.rweight = 0
        self.eweight = 0
        self.usable = False
        self.backup = srv.backup
        self.tree: _Tree | None = None
        self.in_tree = False
        self.seq = 0
        self.turns = 0


class _Tree:
    """Stand-in for an eb32 tree: a min-heap of (key, insertion seq, node) with lazy deletion.

    eb32 keeps duplicate keys in insertion order; the global insertion sequence reproduces that.
    A node's entry is valid only while the node says it is in this tree with that sequence number,
    so deleting is O(1) and stale entries are dropped when they reach the top.
    """

    __slots__ = ("heap", "size")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, _Node]] = []
        self.size = 0

    def insert(self, node: _Node, key: int, seq: int) -> None:
        node.tree = self
        node.in_tree = True
        node.seq = seq
        self.size += 1
        heapq.heappush(self.heap, (key, seq, node))
        if len(self.heap) > 4 * self.size + 32:
            self.heap = [
                e for e in self.heap if e[2].in_tree and e[2].tree is self and e[2].seq == e[1]
            ]
            heapq.heapify(self.heap)

    def first(self) -> _Node | None:
        heap = self.heap
        while heap:
            _, seq, node = heap[0]
            if node.in_tree and node.tree is self and node.seq == seq:
                return node
            heapq.heappop(heap)
        return None


class _Group:
    """One fwrr group (active or backup servers): three trees and the window counters."""

    __slots__ = ("curr", "init", "next", "curr_pos", "curr_weight", "next_weight")

    def __init__(self, total: int) -> None:
        self.curr = _Tree()
        self.init = _Tree()
        self.next = _Tree()
        self.curr_pos = total
        self.curr_weight = total
        self.next_weight = total


class RoundRobinBalancer(Balancer):
    """HAProxy's `roundrobin`: weighted, dynamic weights, starts with the heaviest server
    (the first declared one among equals).

    `exact_windows` is the one deliberate difference from HAProxy. A server joining a window late
    (when the current tree has a hole) starts at the cursor; if that delay exceeds its step,
    HAProxy pushes it to the next window one turn short, so for some weight sets a server gets
    eweight-1 turns per window instead of eweight (weights 156/146/256/202: s2 gets 2335 of every
    12159 picks instead of 2336 of 12160), a small but systematic under-share. With the flag on, a
    server stays in the current tree until it has had its eweight turns (its owed turn comes at
    the very end of the window), so every window lasts exactly 16 x Σ weights picks with exact
    shares. Whenever HAProxy's windows are already exact, which includes every observed sequence,
    nothing changes, since a server then reaches the end of the window exactly on its last turn;
    and a server is never given two turns in a row more than HAProxy gives it. The rule is
    suspended in a window during which weights changed, where HAProxy's own logic applies.
    Set it to False to get HAProxy's rotation unaltered.
    """

    exact_windows: bool = True

    def __init__(self, servers: Sequence[ServerState], params: BalanceParams) -> None:
        self._nodes: list[_Node] = []
        self._act = _Group(0)
        self._bck = _Group(0)
        self._fbck: _Node | None = None
        self._srv_act = 0
        self._srv_bck = 0
        self._seq = 0
        self._ready = False
        super().__init__(servers, params)

    # --- tree helpers -------------------------------------------------------------------

    def _group(self, node: _Node) -> _Group:
        return self._bck if node.backup else self._act

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _dequeue(node: _Node) -> None:
        """eb32_delete: leave the tree but remember which one it was (fwrr_get_srv looks at it)."""
        if node.in_tree and node.tree is not None:
            node.tree.size -= 1
        node.in_tree = False

    def _queue_by_weight(self, tree: _Tree, node: _Node) -> None:
        """Queue in an init/next tree, heaviest first (fwrr_queue_by_weight)."""
        tree.insert(node, SRV_EWGHT_MAX - node.eweight, self._next_seq())

    def _queue_srv(self, node: _Node) -> None:
        """Requeue a server in "curr" at its next position, or in "next" (fwrr_queue_srv)."""
        grp = self._group(node)
        if not node.usable:
            node.tree = None
            node.in_tree = False
            return
        beyond_window = (
            node.npos >= 2 * grp.curr_weight or node.npos >= grp.curr_weight + grp.next_weight
        )
        if node.eweight <= 0 or (beyond_window and not self._owed_turn(grp, node)):
            node.npos -= grp.curr_weight
            self._queue_by_weight(grp.next, node)
        else:
            key = (
                SRV_UWGHT_RANGE * node.npos
                + (SRV_EWGHT_MAX + node.rweight - node.eweight) // BE_WEIGHT_SCALE
            )
            grp.curr.insert(node, key, self._next_seq())

    def _owed_turn(self, grp: _Group, node: _Node) -> bool:
        """Does this server still have a turn due in the current window? (`exact_windows`)"""
        return (
            self.exact_windows and grp.curr_weight == grp.next_weight and node.turns < node.eweight
        )

    def _get_srv(self, node: _Node) -> None:
        """Prepare a server leaving its tree, depending on which one it was in (fwrr_get_srv)."""
        grp = self._group(node)
        if node.tree is grp.init:
            node.npos = 0
            node.rweight = 0
            node.turns = 0
        elif node.tree is grp.next:
            node.npos += grp.curr_weight
        elif node.tree is None:
            node.npos = grp.curr_pos

    @staticmethod
    def _switch_trees(grp: _Group) -> None:
        grp.init, grp.next = grp.next, grp.init
        grp.curr_weight = grp.next_weight
        grp.curr_pos = grp.curr_weight

    @staticmethod
    def _server_from_group(grp: _Group) -> _Node | None:
        """Head of the current tree if its turn has come, else a fresh server from "init"."""
        n1 = grp.curr.first()
        if n1 is not None and n1.eweight and n1.npos <= grp.curr_pos:
            return n1
        n2 = grp.init.first()
        if n2 is not None and n2.eweight:
            n2.npos = 0
            n2.rweight = 0
            n2.turns = 0
            return n2
        return n1

    @staticmethod
    def _update_position(grp: _Group, node: _Node) -> None:
        """Move a picked server `total / weight` further, carrying the remainder.

        HAProxy's fwrr_update_position; also counts the turn for `exact_windows`.
        """
        ew = node.eweight
        if not ew:
            return
        if not node.npos:
            node.npos = grp.curr_pos
        node.lpos = node.npos
        node.turns += 1
        node.npos += grp.next_weight // ew
        node.rweight += grp.next_weight % ew
        if node.rweight >= ew:
            node.rweight -= ew
            node.npos += 1

    # --- state changes ------------------------------------------------------------------

    def recalc(self) -> None:
        """Apply what changed since the last call, server by server, as HAProxy's callbacks would.

        The first call builds the groups (fwrr_init_server_groups). Later calls compare each
        server's usability and weight with the committed values and run the matching
        set_server_status_down / set_server_status_up / update_server_weight, so positions already
        earned in the rotation are kept.
        """
        if not self._ready:
            self._init_groups()
            return
        for node in self._nodes:
            srv = node.srv
            new_usable = srv.usable
            new_ew = srv.eweight * BE_WEIGHT_SCALE
            if srv.backup != node.backup:
                if node.usable:
                    self._set_down(node, new_ew)
                node.backup = srv.backup
                node.tree = None
            if not node.usable and not new_usable:
                node.eweight = new_ew
            elif node.usable and not new_usable:
                self._set_down(node, new_ew)
            elif not node.usable and new_usable:
                self._set_up(node, new_ew)
            elif new_ew != node.eweight:
                self._update_weight(node, new_ew)
        self._recount()

    def _init_groups(self) -> None:
        self._nodes = [_Node(s) for s in self.servers]
        for node in self._nodes:
            node.eweight = node.srv.eweight * BE_WEIGHT_SCALE
            node.usable = node.srv.usable
        self._recount()
        tot_act = sum(n.eweight for n in self._nodes if n.usable and not n.backup)
        tot_bck = sum(n.eweight for n in self._nodes if n.usable and n.backup)
        self._act = _Group(tot_act)
        self._bck = _Group(tot_bck)
        for node in self._nodes:
            if node.usable:
                self._queue_by_weight(self._group(node).init, node)
        self._ready = True

    def _recount(self) -> None:
        """Counts of usable servers per group and the first usable backup (recount_servers)."""
        self._srv_act = sum(1 for n in self._nodes if n.usable and not n.backup)
        self._srv_bck = sum(1 for n in self._nodes if n.usable and n.backup)
        self._fbck = None
        if not self.params.allbackups:
            self._fbck = next((n for n in self._nodes if n.usable and n.backup), None)

    def _set_down(self, node: _Node, new_ew: int) -> None:
        grp = self._group(node)
        grp.next_weight -= node.eweight
        self._dequeue(node)
        node.tree = None
        node.usable = False
        node.eweight = new_ew

    def _set_up(self, node: _Node, new_ew: int) -> None:
        grp = self._group(node)
        grp.next_weight += new_ew
        self._get_srv(node)
        node.npos = grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) // new_ew
        self._dequeue(node)
        node.usable = True
        node.eweight = new_ew
        node.turns = new_ew  # joined mid-window: no turn is owed to it in this window
        self._queue_srv(node)

    def _update_weight(self, node: _Node, new_ew: int) -> None:
        grp = self._group(node)
        grp.next_weight = grp.next_weight - node.eweight + new_ew
        node.eweight = new_ew
        node.turns = new_ew  # its share of this window is no longer defined: owe it nothing
        if node.tree is grp.init:
            self._dequeue(node)
            self._queue_by_weight(grp.init, node)
        elif node.tree is None:
            self._dequeue(node)
            self._get_srv(node)
            node.npos = grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) // new_ew
            self._queue_srv(node)
        else:
            self._get_srv(node)
            prev_next = node.npos
            step = grp.next_weight // new_ew
            node.npos = node.lpos + step
            node.rweight = 0
            if node.npos > prev_next:
                node.npos = prev_next
            if node.npos < grp.curr_pos + 2:
                node.npos = grp.curr_pos + step
            self._dequeue(node)
            self._queue_srv(node)

    # --- picking ------------------------------------------------------------------------

    def pick(self, ctx: PickContext, avoid: ServerState | None = None) -> ServerState | None:
        """Next server of the rotation with a free slot (fwrr_get_next_server).

        A saturated (or avoided) server still consumes its turn, so the others are not pushed
        back; it is requeued afterwards. None when every candidate is saturated.
        """
        node = self._pick(avoid)
        if node is not None and not node.srv.usable:
            # The caller changed a server without recalc(): catch up and choose again.
            self.recalc()
            node = self._pick(avoid)
        return node.srv if node is not None else None

    def _pick(self, avoid: ServerState | None) -> _Node | None:
        if self._srv_act:
            grp = self._act
        elif self._fbck is not None:
            return self._fbck if has_free_slot(self._fbck.srv) else None
        elif self._srv_bck:
            grp = self._bck
        else:
            return None

        switched = False
        avoided: _Node | None = None
        full: list[_Node] = []
        chosen: _Node | None = None
        while chosen is None:
            if not grp.curr_weight:
                grp.curr_pos = grp.curr_weight = grp.next_weight
            node = self._server_from_group(grp)
            while node is None:
                if switched:
                    break
                switched = True
                self._switch_trees(grp)
                node = self._server_from_group(grp)
            if node is None:
                chosen = avoided
                if chosen is not None:
                    self._queue_srv(chosen)
                break
            self._update_position(grp, node)
            self._dequeue(node)
            grp.curr_pos += 1
            if has_free_slot(node.srv):
                if avoid is None or node.srv is not avoid or avoided is not None:
                    chosen = node
                    self._queue_srv(chosen)
                    break
                avoided = node
            full.append(node)

        for node in reversed(full):
            if node is chosen:
                continue
            if switched:
                self._queue_by_weight(grp.init, node)
            else:
                self._queue_srv(node)
        return chosen

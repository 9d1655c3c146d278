"""A short run of the cluster churn soak (``loadtests/soak_cluster.py``): three
real nodes over a real Redis, movers, watchers and short browsing sessions on
every node at once for about 45 s. Every watcher sees every diff (0 sequence
gaps), no joined/left twice, and at the end every view equals the REST
occupancy of every node and what the movers were told of their own actions.
The ten-minute run is ``python -m loadtests.soak_cluster --minutes 10``."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.soak_cluster import SoakConfig, run_soak

pytestmark = pytest.mark.slow


def test_three_nodes_under_churn_show_no_gap_and_every_view_ends_true(tmp_path: Path) -> None:
    config = SoakConfig(seconds=45, log_dir=tmp_path)
    result = run_soak(config)
    print("\n" + result.markdown(config))
    # The churn happened: every kind of action, many times, seen by many views.
    assert min(result.actions[k] for k in ("move", "status", "leave", "reconnect", "browse")) >= 5, result.actions
    assert result.views >= 30 and result.applied >= 2000, (result.views, result.applied)
    assert result.gaps == 0 and result.resyncs == 0
    assert (result.duplicate_joins, result.duplicate_leaves, result.unknown_member) == (0, 0, 0)
    assert not result.errors  # nothing refused but full rooms: no internal, no unavailable
    assert result.converged_in is not None and not result.model_mismatch
